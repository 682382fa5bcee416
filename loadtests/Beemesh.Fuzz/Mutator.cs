namespace Beemesh.Fuzz;

/// <summary>
/// Deterministic byte-level mutations of corpus inputs (bit flips, interesting values, block
/// insert/delete/duplicate, splices between inputs), so a short run without AFL is repeatable.
/// </summary>
public sealed class Mutator(int seed, int maxLength = 64 * 1024)
{
    private static readonly byte[] Interesting = [0, 1, 0x7F, 0x80, 0xFF, 0x40, 0x20, 0x10];
    private readonly Random _random = new(seed);

    /// <summary>A mutated copy of one of <paramref name="corpus"/>'s inputs.</summary>
    public byte[] Next(IReadOnlyList<byte[]> corpus)
    {
        var data = new List<byte>(corpus[_random.Next(corpus.Count)]);
        int rounds = 1 + _random.Next(8);
        for (int r = 0; r < rounds; r++)
        {
            int at = data.Count == 0 ? 0 : _random.Next(data.Count);
            switch (_random.Next(8))
            {
                case 0 when data.Count > 0:
                    data[at] ^= (byte)(1 << _random.Next(8));
                    break;
                case 1 when data.Count > 0:
                    data[at] = Interesting[_random.Next(Interesting.Length)];
                    break;
                case 2 when data.Count > 0:
                    data[at] = (byte)_random.Next(256);
                    break;
                case 3 when data.Count > 1:
                    data.RemoveRange(at, 1 + _random.Next(Math.Min(32, data.Count - at)));
                    break;
                case 4:
                    byte[] block = new byte[1 + _random.Next(16)];
                    _random.NextBytes(block);
                    data.InsertRange(at, block);
                    break;
                case 5 when data.Count > 0:
                    int length = 1 + _random.Next(Math.Min(64, data.Count - at));
                    data.InsertRange(_random.Next(data.Count + 1), data.GetRange(at, length));
                    break;
                case 6:
                    byte[] other = corpus[_random.Next(corpus.Count)];
                    int from = other.Length == 0 ? 0 : _random.Next(other.Length);
                    data = [.. data.Take(at), .. other.Skip(from)];
                    break;
                case 7 when data.Count > 1:
                    // 16-bit field set to an edge value (lengths, ports, counts).
                    int edge = _random.Next(5) switch { 0 => 0, 1 => 0xFFFF, 2 => 0x8000, 3 => data.Count, _ => data.Count + 1 };
                    int pos = Math.Min(at, data.Count - 2);
                    data[pos] = (byte)(edge >> 8);
                    data[pos + 1] = (byte)edge;
                    break;
            }
        }

        if (data.Count > maxLength)
        {
            data.RemoveRange(maxLength, data.Count - maxLength);
        }

        return [.. data];
    }
}
