"""The FELES Kubernetes operator (kopf): FelesSimulation resources to orchestrator and workers.

Importing the package registers its kopf handlers, so that `kopf run -m feles_operator` serves them: the
operator's own startup and cleanup (`lifecycle`), then each kind's handlers (`simulation/`; a new kind is a
package beside it, imported here).
"""

from feles_operator import lifecycle as lifecycle
from feles_operator.simulation import handlers as handlers
from feles_operator.sweep import handlers as sweep_handlers  # noqa: F401  (registers the FelesSweep handlers)
