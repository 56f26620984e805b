"""Container runtimes behind one CRI-shaped interface (``interface.Runtime``)."""
