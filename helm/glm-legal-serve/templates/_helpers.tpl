{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "glm.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Release-qualified name; components append -gateway, -worker, -redis. */}}
{{- define "glm.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "glm.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "glm.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one component: call with (dict "root" $ "component" "gateway"). */}}
{{- define "glm.selectorLabels" -}}
app.kubernetes.io/name: {{ include "glm.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* registry/repository:tag, the tag defaulting to the chart's appVersion: (dict "image" .Values.x.image "root" $). */}}
{{- define "glm.image" -}}
{{- $tag := default .root.Chart.AppVersion .image.tag -}}
{{- if .image.registry -}}
{{- printf "%s/%s:%s" .image.registry .image.repository $tag -}}
{{- else -}}
{{- printf "%s:%s" .image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* The headless Service of the workers: its DNS name resolves to every ready worker pod. */}}
{{- define "glm.workerService" -}}
{{- printf "%s-worker" (include "glm.fullname" .) -}}
{{- end -}}

{{- define "glm.workerDns" -}}
{{- printf "%s.%s.svc.cluster.local:%d" (include "glm.workerService" .) .Release.Namespace (int .Values.worker.port) -}}
{{- end -}}

{{- define "glm.redisUrl" -}}
{{- printf "redis://%s-redis:%d" (include "glm.fullname" .) (int .Values.redis.port) -}}
{{- end -}}

{{/* The Secret the gateway reads keys (and an external Redis URL) from. */}}
{{- define "glm.gatewaySecret" -}}
{{- default (printf "%s-gateway" (include "glm.fullname" .)) .Values.gateway.auth.existingSecret -}}
{{- end -}}

{{- define "glm.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "glm.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end -}}

{{- define "glm.scrapeAnnotations" -}}
{{- if .root.Values.metrics.scrapeAnnotations -}}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .port | quote }}
prometheus.io/path: /metrics
{{- end -}}
{{- end -}}
