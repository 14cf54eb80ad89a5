{{/* Names, labels and the image. */}}
{{- define "symbi.fullname" -}}
{{- printf "%s" .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{- define "symbi.labels" -}}
app.kubernetes.io/name: symbi
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "symbi.selector" -}}
app.kubernetes.io/name: symbi
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .service }}
{{- end -}}

{{- define "symbi.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The kebab-case service name of a values key (mcpGateway -> mcp-gateway). */}}
{{- define "symbi.serviceName" -}}
{{- if eq . "mcpGateway" -}}mcp-gateway{{- else -}}{{ . }}{{- end -}}
{{- end -}}

{{/* Health probe of a service's gRPC port: Kubernetes' gRPC probe when the port is plaintext;
with mTLS (which that probe cannot speak) the service's own certificate asks, in an exec probe.
Arguments: dict "root" $ "port" <grpc port>. */}}
{{- define "symbi.grpcProbe" -}}
{{- if .root.Values.grpc.tls.enabled -}}
exec: {command: ["python", "-m", "symbi_common.grpc.probe"]}
timeoutSeconds: 5
{{- else -}}
grpc: {port: {{ .port }}}
{{- end -}}
{{- end -}}
