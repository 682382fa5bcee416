namespace Beemesh.Identity.Join;

/// <summary>Outcome of checking or redeeming a join token (<see cref="JoinTokenStore"/>).</summary>
public enum JoinTokenCheck
{
    /// <summary>The token exists, is unexpired and unused, and the proof matches its secret.</summary>
    Valid = 0,

    /// <summary>No token with this id was created here (or it was forgotten a day after it expired).</summary>
    Unknown,

    /// <summary>The token's lifetime has passed.</summary>
    Expired,

    /// <summary>The token was already redeemed by a node.</summary>
    AlreadyUsed,

    /// <summary>The proof does not match the token's secret.</summary>
    BadSecret,
}
