"""Players that adapt their bitrate to the network."""
