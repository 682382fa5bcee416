using System.Numerics;
using Beemesh.Netstack.Tcp;

namespace Beemesh.Netstack.Tests.Tcp;

/// <summary>RFC 6528 initial sequence numbers: a 4 µs clock plus SipHash-2-4 of the 4-tuple under a secret key.</summary>
public sealed class InitialSequenceNumbersTests
{
    private static readonly UInt128 Local = (UInt128)0xFFFF_0A00_0202UL; // ::ffff:10.0.2.2
    private static readonly UInt128 Remote = (UInt128)0xFFFF_0A00_0264UL; // ::ffff:10.0.2.100
    private static readonly TimeSpan T0 = TimeSpan.FromSeconds(1234);

    [Fact]
    public void SipHash_matches_the_reference_vectors()
    {
        // The SipHash paper's key 00..0f; Appendix A hashes the 15 bytes 00..0e, the reference
        // implementation's first vector is the empty message.
        ulong k0 = 0x0706050403020100UL;
        ulong k1 = 0x0F0E0D0C0B0A0908UL;
        byte[] fifteen = Enumerable.Range(0, 15).Select(i => (byte)i).ToArray();
        Assert.Equal(0xA129CA6149BE45E5UL, InitialSequenceNumbers.SipHash24(k0, k1, fifteen));
        Assert.Equal(0x726FDB47DD0E0E31UL, InitialSequenceNumbers.SipHash24(k0, k1, []));
        byte[] eight = Enumerable.Range(0, 8).Select(i => (byte)i).ToArray();
        Assert.Equal(0x93F5F5799A932462UL, InitialSequenceNumbers.SipHash24(k0, k1, eight));
    }

    [Fact]
    public void The_same_tuple_advances_with_the_clock_at_250000_per_second()
    {
        var isn = new InitialSequenceNumbers(Key(1));
        uint at0 = isn.Next(Local, 80, Remote, 40000, T0);

        Assert.Equal(at0, isn.Next(Local, 80, Remote, 40000, T0)); // no hidden state: same inputs, same ISN
        Assert.Equal(at0, isn.Next(Local, 80, Remote, 40000, T0 + TimeSpan.FromTicks(39))); // within one 4 µs tick
        Assert.Equal(unchecked(at0 + 1), isn.Next(Local, 80, Remote, 40000, T0 + TimeSpan.FromMicroseconds(4)));
        Assert.Equal(unchecked(at0 + 250_000), isn.Next(Local, 80, Remote, 40000, T0 + TimeSpan.FromSeconds(1)));
        Assert.Equal(unchecked(at0 + 15_000_000), isn.Next(Local, 80, Remote, 40000, T0 + TimeSpan.FromMinutes(1)));

        // The 32-bit space wraps after 2^32 ticks of 4 µs (about 4.77 hours), as RFC 9293's clock does.
        Assert.Equal(at0, isn.Next(Local, 80, Remote, 40000, T0 + TimeSpan.FromTicks(40L << 32)));
    }

    [Fact]
    public void Different_tuples_get_unrelated_values()
    {
        var isn = new InitialSequenceNumbers(Key(1));
        var values = new List<uint>();
        for (ushort port = 40000; port < 41024; port++)
        {
            values.Add(isn.Next(Local, 80, Remote, port, T0));
        }

        Assert.Equal(values.Count, values.Distinct().Count());

        // Neighbouring ports differ in about half their bits and by no common step: nothing to extrapolate.
        double flipped = 0;
        var steps = new HashSet<uint>();
        for (int i = 1; i < values.Count; i++)
        {
            flipped += BitOperations.PopCount(values[i] ^ values[i - 1]);
            steps.Add(unchecked(values[i] - values[i - 1]));
        }

        double mean = flipped / (values.Count - 1);
        Assert.InRange(mean, 14.0, 18.0);
        Assert.True(steps.Count > values.Count - 10, $"only {steps.Count} distinct steps");

        // Every field of the tuple counts, and the direction too.
        uint baseline = isn.Next(Local, 80, Remote, 40000, T0);
        Assert.NotEqual(baseline, isn.Next(Local, 81, Remote, 40000, T0));
        Assert.NotEqual(baseline, isn.Next(Local + 1, 80, Remote, 40000, T0));
        Assert.NotEqual(baseline, isn.Next(Local, 80, Remote + 1, 40000, T0));
        Assert.NotEqual(baseline, isn.Next(Remote, 40000, Local, 80, T0));
    }

    [Fact]
    public void Different_keys_give_different_values_for_the_same_tuple_and_time()
    {
        var a = new InitialSequenceNumbers(Key(1));
        var b = new InitialSequenceNumbers(Key(2));
        int same = 0;
        for (ushort port = 40000; port < 40256; port++)
        {
            if (a.Next(Local, 80, Remote, port, T0) == b.Next(Local, 80, Remote, port, T0))
            {
                same++;
            }
        }

        Assert.Equal(0, same);
        Assert.NotEqual(
            a.Next(Local, 80, Remote, 40000, T0) - a.Next(Local, 80, Remote, 40001, T0),
            b.Next(Local, 80, Remote, 40000, T0) - b.Next(Local, 80, Remote, 40001, T0));
    }

    [Fact]
    public void Random_generators_draw_their_own_secret()
    {
        var a = InitialSequenceNumbers.CreateRandom();
        var b = InitialSequenceNumbers.CreateRandom();

        // Two 128-bit secrets agree on this 64-bit hash with probability 2^-64.
        Assert.NotEqual(a.Hash(Local, 80, Remote, 40000), b.Hash(Local, 80, Remote, 40000));
    }

    [Fact]
    public void A_key_of_the_wrong_length_is_refused()
    {
        var e = Assert.Throws<ArgumentException>(() => new InitialSequenceNumbers(new byte[8]));
        Assert.Contains("16 bytes", e.Message);
    }

    private static byte[] Key(byte seed) => Enumerable.Range(0, InitialSequenceNumbers.KeyLength).Select(i => (byte)(seed * 31 + i)).ToArray();
}
