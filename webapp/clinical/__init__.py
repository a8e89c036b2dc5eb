"""Clinical data with each study (symptoms, vital signs, lab values, history) and the image + clinical
data model fitted on them."""
