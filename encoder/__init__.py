"""The encoding pipeline: label masters in, immutable multi-bitrate fMP4 HLS out."""
