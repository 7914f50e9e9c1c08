"""Camera-view and bird's-eye-view drawing."""
