{{/*
Chart name, truncated to 63 characters (the DNS label limit).
*/}}
{{- define "floodgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: <release>-<chart>, or the release name alone when it already contains the chart
name (so `helm install floodgate …` gives svc/floodgate). Truncated to 63 characters; suffixed
names (-kafka, -target) stay short enough for Service names.
*/}}
{{- define "floodgate.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "floodgate.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels on every resource. The component label is added per resource.
*/}}
{{- define "floodgate.labels" -}}
helm.sh/chart: {{ include "floodgate.chart" . }}
{{ include "floodgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: floodgate
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Selector labels (immutable in Deployments and StatefulSets: never add to these).
*/}}
{{- define "floodgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "floodgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "floodgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "floodgate.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Images: "<repository>:<tag>", the tag defaulting to the chart's appVersion.
Usage: include "floodgate.image" (dict "image" .Values.image.node "root" .)
*/}}
{{- define "floodgate.image" -}}
{{- printf "%s:%s" .image.repository (default .root.Chart.AppVersion (toString .image.tag)) }}
{{- end }}

{{- define "floodgate.kafka.fullname" -}}
{{- printf "%s-kafka" (include "floodgate.fullname" .) }}
{{- end }}

{{- define "floodgate.kafka.headless" -}}
{{- printf "%s-kafka-headless" (include "floodgate.fullname" .) }}
{{- end }}

{{- define "floodgate.target.fullname" -}}
{{- printf "%s-target" (include "floodgate.fullname" .) }}
{{- end }}

{{/*
Kafka bootstrap servers given to the operator and, through it, to every driver. Fully qualified,
because drivers run in the namespaces of their LoadTests.
*/}}
{{- define "floodgate.kafka.bootstrapServers" -}}
{{- if .Values.kafka.bootstrapServers }}
{{- .Values.kafka.bootstrapServers }}
{{- else if .Values.kafka.inCluster.enabled }}
{{- printf "%s.%s.svc.%s:9092" (include "floodgate.kafka.fullname" .) .Release.Namespace .Values.clusterDomain }}
{{- else }}
{{- fail "\n\nKafka is not configured: set kafka.bootstrapServers=HOST:PORT for an existing Kafka, or kafka.inCluster.enabled=true for a single-node Kafka in the cluster (kind, demos)." }}
{{- end }}
{{- end }}

{{/*
The orchestrator's address as drivers are told it (FLOODGATE_ORCHESTRATOR on driver pods):
the operator Service, fully qualified.
*/}}
{{- define "floodgate.orchestratorAddress" -}}
{{- printf "%s.%s.svc.%s:%d" (include "floodgate.fullname" .) .Release.Namespace .Values.clusterDomain (int .Values.operator.port) }}
{{- end }}

{{/*
The Secret that holds the API tokens (auth.existingSecret, or the one the chart generates).
*/}}
{{- define "floodgate.apiTokenSecret" -}}
{{- .Values.auth.existingSecret | default (printf "%s-api-token" (include "floodgate.fullname" .)) }}
{{- end }}
