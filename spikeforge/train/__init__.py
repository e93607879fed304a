"""Training: recipes and overrides (:mod:`.config`), building a run's parts (:mod:`.builders`), the engine
(:mod:`.engine`: one process or many, checkpoints, resume) and its pieces (:mod:`.loop`, :mod:`.optim`,
:mod:`.sampler`, :mod:`.distributed`, :mod:`.checkpoint`, :mod:`.precision`, :mod:`.mixup`, :mod:`.records`);
the one batch adapter (:mod:`.batches`: loader batch -> model input) and the one evaluation loop
(:mod:`.evaluate`), which the commands that read a run (:mod:`spikeforge.commands`) use too. Imports every
library package below it; never ``bench``, the commands or ``cli``."""
