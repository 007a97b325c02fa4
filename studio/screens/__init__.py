"""Studio screens, one module each; the app's screen registry (studio.app.SCREENS) mounts them."""
