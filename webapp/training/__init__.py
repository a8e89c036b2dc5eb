"""Fine-tuning: triggers, queued runs, the worker and its scheduler, the Training page."""
