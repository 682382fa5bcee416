using System.Text;

namespace Beemesh.Slirp.Cli;

/// <summary>
/// A re-implementation of GNU <c>getopt_long</c> (glibc 2.26+) semantics, because podman and scripts
/// rely on its exact behaviour and messages: short-option clusters (<c>-c6</c>), attached or separate
/// arguments (<c>-m1500</c>, <c>-m 1500</c>, <c>--mtu=1500</c>, <c>--mtu 1500</c>), unique-prefix
/// abbreviations of long options, <c>--</c>, and permutation of operands (disabled by
/// <c>POSIXLY_CORRECT</c>). Errors are written to <see cref="Errors"/> in glibc's wording.
/// </summary>
internal sealed class GetoptLong
{
    /// <summary>Returned when an option is unknown, ambiguous, or misses/forbids an argument.</summary>
    public const int Unknown = '?';

    /// <summary>Returned when there are no more options.</summary>
    public const int End = -1;

    private readonly string _programName;
    private readonly string[] _args;
    private readonly string _shortOptions;
    private readonly LongOption[] _longOptions;
    private readonly bool _posixlyCorrect;
    private readonly List<string> _operands = [];
    private int _index;
    private string? _cluster;
    private int _clusterPos;
    private bool _done;

    public GetoptLong(string programName, string[] args, string shortOptions, LongOption[] longOptions, bool posixlyCorrect)
    {
        _programName = programName;
        _args = args;
        _shortOptions = shortOptions;
        _longOptions = longOptions;
        _posixlyCorrect = posixlyCorrect;
    }

    /// <summary>glibc's diagnostics, one line each.</summary>
    public StringBuilder Errors { get; } = new();

    /// <summary>Operands (non-options) in their original order; complete once <see cref="Next"/> returned <see cref="End"/>.</summary>
    public IReadOnlyList<string> Operands => _operands;

    /// <summary>Returns the next option's value (a short option character or a long option's Val), <see cref="Unknown"/> or <see cref="End"/>.</summary>
    public int Next(out string? optarg)
    {
        optarg = null;
        if (_done)
        {
            return End;
        }

        if (_cluster is null)
        {
            while (true)
            {
                if (_index >= _args.Length)
                {
                    _done = true;
                    return End;
                }

                string arg = _args[_index];
                if (arg == "--")
                {
                    _index++;
                    TakeRestAsOperands();
                    return End;
                }

                if (arg.Length < 2 || arg[0] != '-')
                {
                    if (_posixlyCorrect)
                    {
                        TakeRestAsOperands();
                        return End;
                    }

                    _operands.Add(arg);
                    _index++;
                    continue;
                }

                if (arg[1] == '-')
                {
                    return NextLong(arg, out optarg);
                }

                _cluster = arg;
                _clusterPos = 1;
                break;
            }
        }

        return NextShort(out optarg);
    }

    private void TakeRestAsOperands()
    {
        for (; _index < _args.Length; _index++)
        {
            _operands.Add(_args[_index]);
        }

        _done = true;
    }

    private int NextShort(out string? optarg)
    {
        optarg = null;
        string cluster = _cluster!;
        char c = cluster[_clusterPos++];
        bool lastInCluster = _clusterPos >= cluster.Length;
        int spec = _shortOptions.IndexOf(c);
        if (spec < 0 || c == ':' || c == ';')
        {
            Errors.Append(_programName).Append(": invalid option -- '").Append(c).Append("'\n");
            EndCluster(lastInCluster);
            return Unknown;
        }

        bool takesArgument = spec + 1 < _shortOptions.Length && _shortOptions[spec + 1] == ':';
        if (!takesArgument)
        {
            EndCluster(lastInCluster);
            return c;
        }

        if (!lastInCluster)
        {
            optarg = cluster[_clusterPos..];
            EndCluster(true);
            return c;
        }

        EndCluster(true);
        if (_index < _args.Length)
        {
            optarg = _args[_index++];
            return c;
        }

        Errors.Append(_programName).Append(": option requires an argument -- '").Append(c).Append("'\n");
        return Unknown;
    }

    private void EndCluster(bool finished)
    {
        if (finished)
        {
            _cluster = null;
            _index++;
        }
    }

    private int NextLong(string arg, out string? optarg)
    {
        optarg = null;
        string text = arg[2..];
        int eq = text.IndexOf('=');
        string name = eq < 0 ? text : text[..eq];
        _index++;

        int found = -1;
        for (int i = 0; i < _longOptions.Length; i++)
        {
            if (_longOptions[i].Name == name)
            {
                found = i;
                break;
            }
        }

        if (found < 0)
        {
            List<int>? ambiguous = null;
            for (int i = 0; i < _longOptions.Length; i++)
            {
                if (!_longOptions[i].Name.StartsWith(name, StringComparison.Ordinal))
                {
                    continue;
                }

                if (found < 0)
                {
                    found = i;
                }
                else if (_longOptions[found].HasArgument != _longOptions[i].HasArgument || _longOptions[found].Value != _longOptions[i].Value)
                {
                    ambiguous ??= [found];
                    ambiguous.Add(i);
                }
            }

            if (ambiguous is not null)
            {
                Errors.Append(_programName).Append(": option '--").Append(text).Append("' is ambiguous; possibilities:");
                foreach (int i in ambiguous)
                {
                    Errors.Append(" '--").Append(_longOptions[i].Name).Append('\'');
                }

                Errors.Append('\n');
                return Unknown;
            }

            if (found < 0)
            {
                Errors.Append(_programName).Append(": unrecognized option '--").Append(text).Append("'\n");
                return Unknown;
            }
        }

        LongOption option = _longOptions[found];
        if (eq >= 0)
        {
            if (!option.HasArgument)
            {
                Errors.Append(_programName).Append(": option '--").Append(option.Name).Append("' doesn't allow an argument\n");
                return Unknown;
            }

            optarg = text[(eq + 1)..];
            return option.Value;
        }

        if (option.HasArgument)
        {
            if (_index < _args.Length)
            {
                optarg = _args[_index++];
                return option.Value;
            }

            Errors.Append(_programName).Append(": option '--").Append(option.Name).Append("' requires an argument\n");
            return Unknown;
        }

        return option.Value;
    }

    /// <summary>One entry of the long-option table (struct option).</summary>
    internal readonly record struct LongOption(string Name, bool HasArgument, int Value);
}
