"""The adapter's version, on the ground floor: the Provenance it writes, the CapabilityStatement, the API page
and ``--version`` all name it, and none of them should import the package's public API to read it."""

__version__ = "0.1.0"
