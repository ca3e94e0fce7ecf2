"""Import d2lnets before any test imports MXNet, so MXNet gets every core."""
import d2lnets  # noqa: F401
