using Beemesh.Slirp.Sandbox;
using FsCheck.Xunit;

namespace Beemesh.Slirp.Tests.Sandbox;

/// <summary>The helper-to-program hand-off: every field once and well formed, or refused without throwing.</summary>
public class SandboxHandoffTests
{
    [Theory]
    [InlineData("tap=5 vnet=1 offload=0 pivot=6", 5, true, false, 6)]
    [InlineData("pivot=9 offload=1 vnet=0 tap=3", 3, false, true, 9)]
    public void WellFormed_IsParsed(string text, int tap, bool vnet, bool offload, int pivot)
    {
        Assert.True(SandboxHandoff.TryParse(text, out SandboxHandoff? handoff));
        Assert.Equal(new SandboxHandoff(tap, vnet, offload, pivot), handoff);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("tap=5 vnet=1 offload=0")]
    [InlineData("tap=5 vnet=1 offload=0 pivot=5")]
    [InlineData("tap=5 vnet=2 offload=0 pivot=6")]
    [InlineData("tap=-5 vnet=1 offload=0 pivot=6")]
    [InlineData("tap=5 tap=7 vnet=1 offload=0 pivot=6")]
    [InlineData("tap=5 vnet=1 offload=0 pivot=6 extra=1")]
    [InlineData("tap=x vnet=1 offload=0 pivot=6")]
    [InlineData("tap=99999999999 vnet=1 offload=0 pivot=6")]
    [InlineData("=5 vnet=1 offload=0 pivot=6")]
    public void Malformed_IsRefused(string? text)
    {
        Assert.False(SandboxHandoff.TryParse(text, out SandboxHandoff? handoff));
        Assert.Null(handoff);
    }

    [Property(MaxTest = 500)]
    public void AnyText_NeverThrows_AndAnAcceptedHandoffRoundTrips(string text)
    {
        if (SandboxHandoff.TryParse(text, out SandboxHandoff? handoff))
        {
            string again = $"tap={handoff!.TapFd} vnet={(handoff.VnetHeader ? 1 : 0)} offload={(handoff.Offload ? 1 : 0)} pivot={handoff.PivotFd}";
            Assert.True(SandboxHandoff.TryParse(again, out SandboxHandoff? reparsed));
            Assert.Equal(handoff, reparsed);
        }
    }
}
