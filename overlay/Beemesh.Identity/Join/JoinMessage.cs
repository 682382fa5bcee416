using System.Text.Json.Serialization;

namespace Beemesh.Identity.Join;

/// <summary>
/// One message of the join exchange (<see cref="JoinProtocol"/>), JSON in a length-prefixed frame.
/// <see cref="Type"/> says which fields are set:
/// <list type="bullet">
/// <item><c>hello</c> (server → joiner, first): <see cref="Root"/>;</item>
/// <item><c>join</c> (joiner → server): <see cref="TokenId"/>, <see cref="NodeName"/>,
/// <see cref="NodeCaRequest"/>, <see cref="NodeSvidRequest"/> (PKCS#10 DER), <see cref="Proof"/>;</item>
/// <item><c>refuse</c> (joiner → server, instead of <c>join</c>): <see cref="Message"/>;</item>
/// <item><c>joined</c> (server → joiner): <see cref="NodeCa"/>, <see cref="NodeSvid"/>, <see cref="Bundle"/>;</item>
/// <item><c>error</c> (server → joiner): <see cref="Code"/> and <see cref="Message"/>;</item>
/// <item><c>renew</c> (node → server, ALPN <c>beemesh-renew/1</c>): <see cref="NodeName"/>,
/// <see cref="NodeCaRequest"/>, <see cref="NodeSvidRequest"/>;</item>
/// <item><c>renewed</c> (server → node): <see cref="NodeCa"/>, <see cref="NodeSvid"/>, <see cref="Bundle"/>.</item>
/// </list>
/// Binary fields are base64 in JSON. Types and codes are append-only.
/// </summary>
public sealed class JoinMessage
{
    /// <summary>hello, join, refuse, joined, error, renew or renewed.</summary>
    [JsonPropertyName("type")]
    public string? Type { get; set; }

    /// <summary>The trust domain root certificate, DER.</summary>
    [JsonPropertyName("root")]
    public byte[]? Root { get; set; }

    /// <summary>The token id.</summary>
    [JsonPropertyName("tokenId")]
    public string? TokenId { get; set; }

    /// <summary>The joining node's name.</summary>
    [JsonPropertyName("nodeName")]
    public string? NodeName { get; set; }

    /// <summary>PKCS#10 request for the node CA key, DER (its signature proves possession of the key).</summary>
    [JsonPropertyName("nodeCaRequest")]
    public byte[]? NodeCaRequest { get; set; }

    /// <summary>PKCS#10 request for the node SVID key, DER.</summary>
    [JsonPropertyName("nodeSvidRequest")]
    public byte[]? NodeSvidRequest { get; set; }

    /// <summary>The join proof (<see cref="JoinProof"/>).</summary>
    [JsonPropertyName("proof")]
    public byte[]? Proof { get; set; }

    /// <summary>The node CA certificate, DER.</summary>
    [JsonPropertyName("nodeCa")]
    public byte[]? NodeCa { get; set; }

    /// <summary>The node SVID certificate, DER.</summary>
    [JsonPropertyName("nodeSvid")]
    public byte[]? NodeSvid { get; set; }

    /// <summary>The trust bundle (root certificates, DER).</summary>
    [JsonPropertyName("bundle")]
    public List<byte[]>? Bundle { get; set; }

    /// <summary>A <see cref="JoinRefusal"/> name.</summary>
    [JsonPropertyName("code")]
    public string? Code { get; set; }

    /// <summary>One line for people.</summary>
    [JsonPropertyName("message")]
    public string? Message { get; set; }
}
