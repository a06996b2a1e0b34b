"""The network of MultimodalAutoencoder: an encoder and a decoder per
modality around one joint latent (a product of experts), and its loss."""

import torch
from torch import nn

PRESENT = "_present"


def _mlp(width_in, hidden_size, width_out):
    return nn.Sequential(nn.Linear(width_in, hidden_size), nn.GELU(),
                         nn.Linear(hidden_size, width_out))


class JointAutoencoder(nn.Module):
    """Encoders from each modality to a Gaussian expert over the latent, a
    product of the present modalities' experts (and, for a VAE, of the prior)
    as the joint latent, and a decoder back to each modality.

    ``forward(_present=mask, **blocks)`` returns ``(reconstructions, blocks,
    present, mean, log_variance)``; in training, each present modality of a
    row is hidden from the encoders with probability ``modality_dropout``
    (one always stays), so that any subset of modalities learns to predict
    all of them. In eval mode (validation), each modality is predicted from
    the others alone."""

    def __init__(self, widths, n_components, hidden_size=256, variational=False,
                 modality_dropout=0.5):
        super().__init__()
        self.names = list(widths)
        self.variational = variational
        self.modality_dropout = modality_dropout
        self.encoders = nn.ModuleDict({
            name: _mlp(width, hidden_size, 2 * n_components) for name, width in widths.items()})
        self.decoders = nn.ModuleDict({
            name: _mlp(n_components, hidden_size, width) for name, width in widths.items()})

    def encode(self, blocks, present):
        """Mean and log-variance of the joint latent of the rows, from the
        modalities flagged in ``present`` (rows, modalities)."""
        precision_sum, weighted = 0.0, 0.0
        if self.variational:  # the prior N(0, I) is one more expert
            precision_sum = 1.0
        for j, name in enumerate(self.names):
            mean, log_variance = self.encoders[name](blocks[name]).chunk(2, dim=1)
            if not self.variational:  # a plain autoencoder: equal experts
                log_variance = torch.zeros_like(log_variance)
            precision = torch.exp(-log_variance.clamp(-10, 10)) * present[:, j:j + 1]
            precision_sum = precision_sum + precision
            weighted = weighted + precision * mean
        precision_sum = precision_sum.clamp_min(1e-6)
        return weighted / precision_sum, -torch.log(precision_sum)

    def decode(self, latent):
        return {name: self.decoders[name](latent) for name in self.names}

    def forward(self, **x):
        present = x.pop(PRESENT)
        if not self.training:
            return self._predict_each_from_the_others(x, present)
        used = present
        if self.modality_dropout > 0:
            hidden = torch.rand(present.shape, device=present.device) < self.modality_dropout
            kept = present.bool() & ~hidden
            # a row that lost every modality it had gets one back at random
            lost = ~kept.any(dim=1) & present.bool().any(dim=1)
            if lost.any():
                pick = torch.multinomial(present[lost].float(), 1).squeeze(1)
                kept[lost.nonzero().squeeze(1), pick] = True
            used = kept.float()
        mean, log_variance = self.encode(x, used)
        latent = mean
        if self.variational:
            latent = mean + torch.randn_like(mean) * torch.exp(0.5 * log_variance)
        return self.decode(latent), x, present, mean, log_variance

    def _predict_each_from_the_others(self, blocks, present):
        """Each modality decoded from the row's other modalities alone (the
        validation loss is then the imputation error, plus the KL term of a
        VAE); rows that have no other modality do not count."""
        reconstructions, counted = {}, present.clone()
        for j, name in enumerate(self.names):
            others = present.clone()
            others[:, j] = 0
            counted[:, j] *= (others.sum(dim=1) > 0).float()
            mean, _ = self.encode(blocks, others)
            reconstructions[name] = self.decoders[name](mean)
        mean, log_variance = self.encode(blocks, present)
        return reconstructions, blocks, counted, mean, log_variance


class ReconstructionLoss(nn.Module):
    """Squared error of each present modality's reconstruction, summed over
    its (standardised) features, plus ``beta`` times the KL divergence of the
    joint latent from N(0, I) for a VAE: the negative ELBO under unit-variance
    Gaussian decoders, per row."""

    def __init__(self, beta=1.0, variational=False):
        super().__init__()
        self.beta = beta
        self.variational = variational

    def forward(self, y_pred, y_true=None):
        reconstructions, blocks, present, mean, log_variance = y_pred
        loss = 0.0
        for j, (name, reconstruction) in enumerate(reconstructions.items()):
            error = (reconstruction - blocks[name]).pow(2).sum(dim=1)
            loss = loss + 0.5 * (error * present[:, j]).mean()
        if self.variational:
            kl = 0.5 * (mean.pow(2) + log_variance.exp() - 1 - log_variance).sum(dim=1)
            loss = loss + self.beta * kl.mean()
        return loss
