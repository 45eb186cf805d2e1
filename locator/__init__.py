"""The locator: sends each player to the nearest, least-loaded healthy edge."""
