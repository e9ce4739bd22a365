{{/*
switchyard.name is the chart name, or nameOverride.
*/}}
{{- define "switchyard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
switchyard.fullname prefixes every object name: "<release>-<name>", or just the
release name when it already contains the chart name. Kept short enough that the
longest suffix ("-controller-tls") still fits in 63 characters.
*/}}
{{- define "switchyard.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := include "switchyard.name" . }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
switchyard.labels are the labels of every object.
*/}}
{{- define "switchyard.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "switchyard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: switchyard
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
switchyard.selectorLabels select one component's Pods; call with
(dict "root" $ "component" "controller").
*/}}
{{- define "switchyard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "switchyard.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
switchyard.componentLabels are an object's labels plus its component.
*/}}
{{- define "switchyard.componentLabels" -}}
{{ include "switchyard.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
switchyard.edgeSelector is the label selector the controller gives each Gateway's
Service: the edge replicas of this release.
*/}}
{{- define "switchyard.edgeSelector" -}}
{{- printf "app.kubernetes.io/name=%s,app.kubernetes.io/instance=%s,app.kubernetes.io/component=edge" (include "switchyard.name" .) .Release.Name }}
{{- end }}

{{- define "switchyard.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "switchyard.controllerServiceAccount" -}}
{{- default (printf "%s-controller" (include "switchyard.fullname" .)) .Values.serviceAccount.controller.name }}
{{- end }}

{{- define "switchyard.gatewayServiceAccount" -}}
{{- default (printf "%s-gateway" (include "switchyard.fullname" .)) .Values.serviceAccount.gateway.name }}
{{- end }}

{{- define "switchyard.nodeServiceAccount" -}}
{{- default (printf "%s-node" (include "switchyard.fullname" .)) .Values.serviceAccount.node.name }}
{{- end }}

{{/*
switchyard.gatewayIdentities are the ServiceAccounts (namespace/name) whose tokens
the controller accepts from gateway replicas: the edge's, and the node's with
east-west on.
*/}}
{{- define "switchyard.gatewayIdentities" -}}
{{- $ids := list (printf "%s/%s" .Release.Namespace (include "switchyard.gatewayServiceAccount" .)) }}
{{- if .Values.eastWest.enabled }}
{{- $ids = append $ids (printf "%s/%s" .Release.Namespace (include "switchyard.nodeServiceAccount" .)) }}
{{- end }}
{{- join "," $ids }}
{{- end }}

{{/*
switchyard.webhookEnabled is "true" when the chart registers the east-west webhook.
*/}}
{{- define "switchyard.webhookEnabled" -}}
{{- if and .Values.eastWest.enabled .Values.eastWest.webhook.enabled }}true{{ end }}
{{- end }}

{{- define "switchyard.webhookSecret" -}}
{{- printf "%s-webhook-tls" (include "switchyard.fullname" .) }}
{{- end }}

{{/*
switchyard.controllerService is the name of the controller's Service, which the
gateway replicas connect to and its certificate is issued for.
*/}}
{{- define "switchyard.controllerService" -}}
{{- printf "%s-controller" (include "switchyard.fullname" .) }}
{{- end }}

{{- define "switchyard.tlsSecret" -}}
{{- default (printf "%s-controller-tls" (include "switchyard.fullname" .)) .Values.controller.tls.existingSecret }}
{{- end }}

{{/*
switchyard.controllerURL is where gateway replicas stream snapshots from.
*/}}
{{- define "switchyard.controllerURL" -}}
{{- printf "https://%s.%s.svc:%d" (include "switchyard.controllerService" .) .Release.Namespace (int .Values.controller.snapshotPort) }}
{{- end }}

{{/*
switchyard.softAntiAffinity prefers spreading one component's Pods over nodes; call
with (dict "root" $ "component" "edge").
*/}}
{{- define "switchyard.softAntiAffinity" -}}
podAntiAffinity:
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "switchyard.selectorLabels" . | nindent 12 }}
{{- end }}

{{/*
switchyard.securityContext is every container's: an unprivileged user, no
capabilities, a read-only root file system.
*/}}
{{- define "switchyard.securityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
switchyard.gatewayVolumes are the volumes every gateway replica mounts: the
projected ServiceAccount token it presents to the controller, the CA that signed the
controller's certificate (only that key of the Secret), and a folder for its last
good snapshot.
*/}}
{{- define "switchyard.gatewayVolumes" -}}
- name: token
  projected:
    sources:
      - serviceAccountToken:
          path: switchyard-gateway
          audience: {{ .Values.controller.gatewayTokenAudience }}
          expirationSeconds: 3600
- name: controller-ca
  secret:
    secretName: {{ include "switchyard.tlsSecret" . }}
    items:
      - key: ca.crt
        path: ca.crt
- name: state
  emptyDir: {}
{{- end }}

{{- define "switchyard.gatewayVolumeMounts" -}}
- name: token
  mountPath: /var/run/secrets/tokens
  readOnly: true
- name: controller-ca
  mountPath: /etc/switchyard/controller-ca
  readOnly: true
- name: state
  mountPath: /var/lib/switchyard
{{- end }}

{{/*
switchyard.gatewayArgs are the flags every gateway replica gets; call with
(dict "root" $ "role" "edge" "values" .Values.edgeGateway), and "metricsHost" to bind
the metrics port to one address.
*/}}
{{- define "switchyard.gatewayArgs" -}}
- gateway
- --role={{ .role }}
- --controller={{ include "switchyard.controllerURL" .root }}
- --token-file=/var/run/secrets/tokens/switchyard-gateway
- --ca-file=/etc/switchyard/controller-ca/ca.crt
- --state-path=/var/lib/switchyard/snapshot.json
- --metrics-addr={{ .metricsHost | default "" }}:{{ .values.metricsPort }}
- --log-level={{ .values.logLevel }}
- --log-format={{ .values.logFormat }}
{{- end }}

{{/*
switchyard.probes are the health checks of a process whose metricsPort serves
/healthz and /readyz.
*/}}
{{- define "switchyard.probes" -}}
readinessProbe:
  httpGet: {path: /readyz, port: {{ . }}}
  periodSeconds: 5
  failureThreshold: 2
livenessProbe:
  httpGet: {path: /healthz, port: {{ . }}}
  periodSeconds: 10
  failureThreshold: 6
{{- end }}

{{/*
switchyard.pdb renders a PodDisruptionBudget spec's budget from minAvailable, else
maxUnavailable.
*/}}
{{- define "switchyard.pdbBudget" -}}
{{- if not (kindIs "invalid" .minAvailable) }}
minAvailable: {{ .minAvailable }}
{{- else }}
maxUnavailable: {{ .maxUnavailable }}
{{- end }}
{{- end }}
