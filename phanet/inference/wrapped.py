"""The base of the inference wrappers (test-time augmentation, class prior): a module around a registry model."""

from __future__ import annotations

from torch import nn


class WrappedModel(nn.Module):
    """Holds a registry model as ``self.model`` and answers for it the attributes callers read from one."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    @property
    def label_space(self):
        return self.model.label_space

    @property
    def data_config(self):
        return self.model.data_config

    @property
    def num_scales(self) -> int:
        return self.model.num_scales
