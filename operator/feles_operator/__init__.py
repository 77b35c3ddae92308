"""The FELES Kubernetes operator (kopf): FelesSimulation resources to orchestrator and workers.

Importing the package registers its kopf handlers, so that `kopf run -m feles_operator` serves them.
"""

from feles_operator import handlers as handlers
