"""Prior studies: a patient's other films beside the one being read, and the side-by-side view."""
