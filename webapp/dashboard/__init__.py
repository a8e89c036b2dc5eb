"""The model dashboard for engineers: every version's gold-set metrics, promotions and rollbacks, the
learning curve and two versions compared (versions), and its pages (views)."""
