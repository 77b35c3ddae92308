{{/* The chart's name, or nameOverride. */}}
{{- define "feles.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name: the release name, with the chart name unless the release name contains it. */}}
{{- define "feles.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* The operator's Deployment, (Cluster)Role and bindings. */}}
{{- define "feles.operatorName" -}}
{{- printf "%s-operator" (include "feles.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "feles.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "feles.operatorName" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "feles.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* Selects the operator pod; also what the simulations' NetworkPolicies admit. */}}
{{- define "feles.selectorLabels" -}}
app.kubernetes.io/name: {{ include "feles.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "feles.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "feles.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: feles
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The operator's rights, the same as a ClusterRole or as a Role per watched namespace. */}}
{{- define "feles.rules" -}}
# FelesSimulations and FelesSweeps: kopf lists and watches them and keeps its bookkeeping in their annotations.
- apiGroups: ["feles.io"]
  resources: ["felessimulations", "felessweeps"]
  verbs: ["get", "list", "watch", "patch"]
# A FelesSweep's cells are FelesSimulations it creates; no delete: garbage collection removes them with the sweep.
- apiGroups: ["feles.io"]
  resources: ["felessimulations"]
  verbs: ["create"]
# Their status: phase, round, accuracy, conditions; a sweep's counts and best cell.
- apiGroups: ["feles.io"]
  resources: ["felessimulations/status", "felessweeps/status"]
  verbs: ["get", "patch"]
# Children carry ownerReferences with blockOwnerDeletion, which needs this where
# the OwnerReferencesPermissionEnforcement admission plugin is on (e.g. OpenShift).
- apiGroups: ["feles.io"]
  resources: ["felessimulations/finalizers", "felessweeps/finalizers"]
  verbs: ["update"]
# Events about the simulations and sweeps (Created, RoundFinished, SimulationSucceeded, warnings).
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
# Children made once and never changed; no delete: garbage collection removes them with their owner.
- apiGroups: [""]
  resources: ["configmaps", "services", "persistentvolumeclaims"]
  verbs: ["get", "create"]
# The API token of each simulation: created once, read back to call its /v1/status.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "create"]
# Pods: read only, to report crash loops, image pull errors and evictions in the status.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list"]
# Orchestrator Deployment and worker StatefulSet: patched to scale workers and to roll new pod templates.
- apiGroups: ["apps"]
  resources: ["deployments", "statefulsets"]
  verbs: ["get", "create", "patch"]
{{- if .Values.simulations.networkPolicy }}
# One NetworkPolicy per simulation, made once.
- apiGroups: ["networking.k8s.io"]
  resources: ["networkpolicies"]
  verbs: ["get", "create"]
{{- end }}
{{- end }}
