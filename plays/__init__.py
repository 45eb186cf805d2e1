"""Play events after the locator took them: the durable log, its consumers and their results."""
