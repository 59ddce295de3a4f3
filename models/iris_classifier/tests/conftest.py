pytest_plugins = ["modelkit.testing"]  # fixtures and the contract every model meets (see modelkit/testing)
