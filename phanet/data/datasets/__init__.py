"""One loader per dataset, each turning a root folder in the dataset's distributed layout into a
:class:`phanet.data.DatasetIndex` and registering itself with ``@register_dataset`` (see
:mod:`phanet.data.registry`, which imports these modules on first lookup).

``generic`` (CSV layout), ``synthetic`` (built-in faces rendered on the fly), ``kdef``, ``multipie``,
``bu3dfe``, ``affectnet``, ``sfew``, ``rafdb``, ``fer2013``. How to add one: docs/architecture.md.
"""
