namespace Beemesh.Slirp.Api;

/// <summary>Kinds of <see cref="ParsonJsonValue"/>.</summary>
internal enum ParsonJsonKind
{
    Object,
    Array,
    String,
    Number,
    Boolean,
    Null,
}
