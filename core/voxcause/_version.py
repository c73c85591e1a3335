"""The one home of voxcause's version: every module that records it imports it from here, never from the
package root (which would load the whole public API, and its import cycles, to read one string)."""

__version__ = "0.1.0"
