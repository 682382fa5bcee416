namespace Beemesh.Agent.Tests.Policies;

/// <summary>Policy files the agent and CLI tests share.</summary>
internal static class PolicyTexts
{
    internal const string TwoPolicies = """
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata: {name: allow-web, namespace: shop}
        spec:
          action: ALLOW
          rules:
          - from: [{source: {principals: ["example.org/ns/shop/sa/web"]}}]
        ---
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata: {name: no-admin, namespace: shop}
        spec:
          action: DENY
          rules:
          - to: [{operation: {paths: ["/admin*"]}}]
        """;

    // Line 7 holds the bad port; the first document is valid but must not be applied either.
    internal const string BadSecondDocument = """
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata: {name: fine, namespace: shop}
        spec: {action: ALLOW, rules: [{}]}
        ---
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata: {name: broken, namespace: shop}
        spec:
          rules:
          - to: [{operation: {ports: ["http"]}}]
        """;
}
