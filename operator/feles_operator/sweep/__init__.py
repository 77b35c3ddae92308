"""The FelesSweep kind: one resource, a grid of FelesSimulations (its cells), one comparison in its status.

`resource` parses `.spec` (feles.sweep.SweepSpec plus the cells' pod settings), `crd` generates the CRD,
`builders` makes a cell's FelesSimulation, `status` computes the sweep's status from its children (pure), and
`handlers` are the thin kopf glue: the sweep's own changes, and its children's phases flowing up.
"""
