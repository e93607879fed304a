"""Training: recipes and overrides (:mod:`.config`), building a run's parts (:mod:`.builders`), the engine
(:mod:`.engine`: one process or many, checkpoints, resume) and its pieces (:mod:`.loop`, :mod:`.optim`,
:mod:`.sampler`, :mod:`.distributed`, :mod:`.checkpoint`, :mod:`.precision`, :mod:`.mixup`, :mod:`.records`,
:mod:`.plots`)."""
