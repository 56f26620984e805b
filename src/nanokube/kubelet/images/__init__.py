"""Container images for the native runtime: references, content store, registry pulls, archive imports and
overlayfs layer snapshots. ``store.ImageStore`` is the entry point; the other modules are its parts."""
