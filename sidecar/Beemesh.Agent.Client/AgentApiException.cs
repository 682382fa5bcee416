using System.Net;

namespace Beemesh.Agent.Client;

/// <summary>The agent refused a request; <see cref="Exception.Message"/> is its one-line reason.</summary>
public sealed class AgentApiException : Exception
{
    /// <summary>Creates the exception for a refused request.</summary>
    public AgentApiException(HttpStatusCode statusCode, string message, IReadOnlyList<string>? details = null)
        : base(message)
    {
        StatusCode = statusCode;
        Details = details ?? [];
    }

    /// <summary>The HTTP status the agent answered.</summary>
    public HttpStatusCode StatusCode { get; }

    /// <summary>Itemized reasons, e.g. each policy error with its line number.</summary>
    public IReadOnlyList<string> Details { get; }
}
