"""keyplane_client: verify Keyplane licenses offline and decide what the user may do."""
