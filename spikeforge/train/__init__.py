"""Training: recipes and overrides (:mod:`.config`), the loop (:mod:`.engine`)."""
