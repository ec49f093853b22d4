"""Where a call goes: the model catalog (public names and their deployments) and the router."""
