"""Loss terms of the learned anonymizers (DESIGN.md section 3), as small pure functions of tensors.

Images are on the [-1, 1] scale; log-probabilities are (N, C); discriminator outputs are PatchGAN score maps.
"""

from __future__ import annotations

import torch

# Cama's generator weights: L_G = L_adv + FIDELITY_WEIGHT * L1(x', x) + CLASSIFIER_WEIGHT * L_clf.
CAMA_FIDELITY_WEIGHT = 10.0
CAMA_CLASSIFIER_WEIGHT = 0.01


def discriminator_loss(d_real_match: torch.Tensor, d_fake_target: torch.Tensor, d_real_mismatch: torch.Tensor) -> torch.Tensor:
    """Cama's matching-aware least-squares discriminator loss.

    ``L_D = E[(D(x, y) - 1)^2] + 1/2 (E[D(x', y')^2] + E[D(x, y')^2])``: a real image with its own label is real;
    a generated image with its target label, and a real image with a wrong label, are fake.

    Parameters
    ----------
    d_real_match : Tensor
        ``D(x, y)``: real images with their true camera model.
    d_fake_target : Tensor
        ``D(x', y')``: generated images with their target model (detached from the generator).
    d_real_mismatch : Tensor
        ``D(x, y')``: real images with a model that did not take them.
    """
    return ((d_real_match - 1.0) ** 2).mean() + 0.5 * ((d_fake_target**2).mean() + (d_real_mismatch**2).mean())


def generator_adversarial_loss(d_fake_target: torch.Tensor) -> torch.Tensor:
    """Least-squares generator term ``L_adv = E[(D(x', y') - 1)^2]``."""
    return ((d_fake_target - 1.0) ** 2).mean()


def classifier_loss(log_probs_high: torch.Tensor, log_probs_low: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cama's evaluator term ``L_clf = -1/2 log(E_H(x'_H)_y' * E_L(x'_L)_y')``, averaged over the batch."""
    idx = target[:, None]
    return -0.5 * (log_probs_high.gather(1, idx) + log_probs_low.gather(1, idx)).mean()


def cama_generator_loss(
    d_fake_target: torch.Tensor,
    generated: torch.Tensor,
    original: torch.Tensor,
    log_probs_high: torch.Tensor,
    log_probs_low: torch.Tensor,
    target: torch.Tensor,
    *,
    fidelity_weight: float = CAMA_FIDELITY_WEIGHT,
    classifier_weight: float = CAMA_CLASSIFIER_WEIGHT,
) -> dict[str, torch.Tensor]:
    """``L_G = L_adv + 10 L1(x', x) + 0.01 L_clf`` and its parts (keys ``total``, ``adv``, ``l1``, ``clf``)."""
    adv = generator_adversarial_loss(d_fake_target)
    l1 = (generated - original).abs().mean()
    clf = classifier_loss(log_probs_high, log_probs_low, target)
    return {"total": adv + fidelity_weight * l1 + classifier_weight * clf, "adv": adv, "l1": l1, "clf": clf}


def truncated_l1(erased: torch.Tensor, original: torch.Tensor, threshold: float) -> torch.Tensor:
    """SiamTE's truncated fidelity: ``mean(max(|x' - x| - threshold, 0))``; changes within ``threshold`` are free."""
    return torch.relu((erased - original).abs() - threshold).mean()


def embedded_similarity_loss(embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cosine distance ``1 - <e_i, e_j>`` over pairs of erased patches of *different* camera models.

    ``embeddings`` are L2-normalised (N, D). Zero when the batch has a single model (nothing to pull together).
    """
    sim = embeddings @ embeddings.t()
    different = labels[:, None] != labels[None, :]
    if not bool(different.any()):
        return embeddings.sum() * 0.0
    return (1.0 - sim[different]).mean()


def uniform_cross_entropy(log_probs: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the classifier's output against the uniform distribution over camera models,
    ``-1/C sum_c log p_c`` (its minimum, ``log C``, is reached when no model is preferred)."""
    return -log_probs.mean()
