"""Getting images in: uploads, bulk imports, the content-addressed image store."""
