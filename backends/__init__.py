"""The built-in storage backends, installed as ``pyramid_sumatra_backends``."""
