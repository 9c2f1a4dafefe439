"""socketgrade: grades socket-programming assignments and explains every verdict."""

__version__ = "0.1.0"
