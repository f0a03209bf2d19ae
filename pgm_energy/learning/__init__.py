"""Learning: gradient estimators, optimizers, monitors and the ``fit`` loop.

Every estimator returns ``d mean log P(X) / d theta`` as a dict shaped like
``model.params``:

    grad = E_model[dE/dtheta] - mean over the batch of E_{h|x}[dE/dtheta]

(negative phase minus positive phase). The package's modules:

* :mod:`~pgm_energy.learning.estimators`: ``CD``, ``PCD``, ``PT``, ``ExactGradient`` and the
  expected-state statistics they share;
* :mod:`~pgm_energy.learning.positive`: ``MeanField``, ``ClampedGibbs``, the positive
  phases of models whose hidden units interact;
* :mod:`~pgm_energy.learning.centering`: ``Centering``, centered gradients;
* :mod:`~pgm_energy.learning.pretraining`: ``pretrain``, greedy layer-wise pretraining of a
  DBM;
* :mod:`~pgm_energy.learning.optimizers`: ``SGD``, ``Adam``, ``exponential_decay``;
* :mod:`~pgm_energy.learning.monitors`: ``PseudoLogLikelihood``, ``ReconstructionError``,
  ``ExactLogLikelihood``;
* :mod:`~pgm_energy.learning.fit`: ``fit``, ``History``, ``TrainingDiverged``;
* :mod:`~pgm_energy.learning.checkpoints`: the checkpoint file of ``fit``;
* :mod:`~pgm_energy.learning.compiled`: whole epochs in compiled code (PCD + SGD on RBMs
  and DBMs).

They use the samplers' public state and the flat graph's public helpers only.
"""
from .estimators import CD, PCD, PT, ExactGradient, expected_states, moments_gradient
from .fit import History, TrainingDiverged, fit
from .monitors import (ExactLogLikelihood, PseudoLogLikelihood, ReconstructionError,
                       pseudo_log_likelihood)
from .optimizers import SGD, Adam, exponential_decay
from .centering import Centering
from .positive import ClampedGibbs, MeanField
from .pretraining import pretrain

__all__ = ["CD", "PCD", "PT", "ExactGradient", "SGD", "Adam", "fit", "History",
           "PseudoLogLikelihood", "ReconstructionError", "ExactLogLikelihood",
           "exponential_decay", "expected_states", "moments_gradient", "TrainingDiverged",
           "pseudo_log_likelihood", "MeanField", "ClampedGibbs", "Centering", "pretrain"]
