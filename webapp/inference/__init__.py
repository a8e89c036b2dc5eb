"""The served champion (hot swap), predictions, Grad-CAM overlays and pool scoring."""
