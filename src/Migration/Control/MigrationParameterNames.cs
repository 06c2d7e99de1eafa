using System.Text.Json.Nodes;

namespace MiniVmm.Migration.Control;

/// <summary>
/// The QMP spelling of <see cref="MigrationParameters"/> (<c>migrate-set-parameters</c>,
/// <c>query-migrate-parameters</c>): reading a JSON object of changes and writing the whole set.
/// Range checks and their messages follow QEMU 7.2 ("Parameter 'x' expects ...").
/// </summary>
public static class MigrationParameterNames
{
    private static readonly (string Name, long Min, long Max, Func<MigrationParameters, long> Get,
        Func<MigrationParameters, long, MigrationParameters> Set)[] Integers =
    [
        ("max-bandwidth", 0, long.MaxValue, p => p.MaxBandwidth, (p, v) => p with { MaxBandwidth = v }),
        ("downtime-limit", 0, 2_000_000, p => p.DowntimeLimit, (p, v) => p with { DowntimeLimit = v }),
        ("announce-initial", 1, 100_000, p => p.AnnounceInitial, (p, v) => p with { AnnounceInitial = v }),
        ("announce-max", 1, 100_000, p => p.AnnounceMax, (p, v) => p with { AnnounceMax = v }),
        ("announce-rounds", 1, 1000, p => p.AnnounceRounds, (p, v) => p with { AnnounceRounds = v }),
        ("announce-step", 1, 10_000, p => p.AnnounceStep, (p, v) => p with { AnnounceStep = v }),
        ("throttle-trigger-threshold", 1, 100, p => p.ThrottleTriggerThreshold, (p, v) => p with { ThrottleTriggerThreshold = v }),
        ("cpu-throttle-initial", 1, 99, p => p.CpuThrottleInitial, (p, v) => p with { CpuThrottleInitial = v }),
        ("cpu-throttle-increment", 1, 99, p => p.CpuThrottleIncrement, (p, v) => p with { CpuThrottleIncrement = v }),
        ("max-cpu-throttle", 1, 99, p => p.MaxCpuThrottle, (p, v) => p with { MaxCpuThrottle = v }),
        ("x-checkpoint-delay", 0, long.MaxValue, p => p.XCheckpointDelay, (p, v) => p with { XCheckpointDelay = v }),
        ("max-postcopy-bandwidth", 0, long.MaxValue, p => p.MaxPostcopyBandwidth, (p, v) => p with { MaxPostcopyBandwidth = v }),
        ("multifd-channels", 1, 255, p => p.MultifdChannels, (p, v) => p with { MultifdChannels = v }),
        ("xbzrle-cache-size", 0, long.MaxValue, p => p.XbzrleCacheSize, (p, v) => p with { XbzrleCacheSize = v }),
        ("avail-switchover-bandwidth", 0, long.MaxValue, p => p.AvailSwitchoverBandwidth, (p, v) => p with { AvailSwitchoverBandwidth = v }),
        ("x-stall-timeout", 0, 86_400_000, p => p.XStallTimeout, (p, v) => p with { XStallTimeout = v }),
    ];

    private static readonly (string Name, Func<MigrationParameters, bool> Get,
        Func<MigrationParameters, bool, MigrationParameters> Set)[] Booleans =
    [
        ("cpu-throttle-tailslow", p => p.CpuThrottleTailslow, (p, v) => p with { CpuThrottleTailslow = v }),
        ("x-throttle-computed", p => p.XThrottleComputed, (p, v) => p with { XThrottleComputed = v }),
    ];

    private static readonly (string Name, Func<MigrationParameters, string> Get,
        Func<MigrationParameters, string, MigrationParameters> Set)[] Strings =
    [
        ("tls-creds", p => p.TlsCreds, (p, v) => p with { TlsCreds = v }),
        ("tls-hostname", p => p.TlsHostname, (p, v) => p with { TlsHostname = v }),
        ("tls-authz", p => p.TlsAuthz, (p, v) => p with { TlsAuthz = v }),
    ];

    /// <summary>Every parameter name this side knows.</summary>
    public static IEnumerable<string> All =>
        Integers.Select(i => i.Name).Concat(Booleans.Select(b => b.Name)).Concat(Strings.Select(s => s.Name));

    /// <summary>Whether <paramref name="name"/> takes a boolean.</summary>
    public static bool IsBoolean(string name) => Array.Exists(Booleans, b => b.Name == name);

    /// <summary>Whether <paramref name="name"/> takes a string (QEMU's StrOrNull: a string, or null for "").</summary>
    public static bool IsString(string name) => Array.Exists(Strings, s => s.Name == name);

    /// <summary>
    /// Applies the members of <paramref name="changes"/> to <paramref name="current"/>; the result
    /// is all or nothing. Throws <see cref="ArgumentException"/> with QEMU's wording.
    /// </summary>
    public static MigrationParameters Apply(MigrationParameters current, JsonObject changes)
    {
        MigrationParameters result = current;
        foreach ((string name, JsonNode? value) in changes)
        {
            int boolean = Array.FindIndex(Booleans, b => b.Name == name);
            if (boolean >= 0)
            {
                bool flag = value is JsonValue v && v.TryGetValue(out bool b)
                    ? b
                    : throw new ArgumentException($"Invalid parameter type for '{name}', expected: boolean");
                result = Booleans[boolean].Set(result, flag);
                continue;
            }

            int text = Array.FindIndex(Strings, s => s.Name == name);
            if (text >= 0)
            {
                // QEMU's StrOrNull: null means "" (TLS off, the hostname from the URI).
                string given = value is null
                    ? ""
                    : value is JsonValue s && s.TryGetValue(out string? str)
                        ? str
                        : throw new ArgumentException($"Invalid parameter type for '{name}', expected: string");
                if (name == "tls-authz" && given.Length > 0)
                {
                    throw new ArgumentException(
                        $"Parameter 'tls-authz': MiniVmm has no authorization objects to check '{given}' with; leave it empty "
                        + "(with verify-peer=on the destination still requires a client certificate signed by ca-cert.pem)");
                }

                result = Strings[text].Set(result, given);
                continue;
            }

            int index = Array.FindIndex(Integers, i => i.Name == name);
            if (index < 0)
            {
                throw new ArgumentException($"Parameter '{name}' is unexpected");
            }

            var spec = Integers[index];
            if (value is not JsonValue number || !number.TryGetValue(out long parsed))
            {
                throw new ArgumentException($"Invalid parameter type for '{name}', expected: integer");
            }

            if (parsed < spec.Min || parsed > spec.Max)
            {
                string qemuName = name.Replace('-', '_');
                throw new ArgumentException(
                    $"Parameter '{qemuName}' expects an integer in the range of {spec.Min} to {spec.Max}");
            }

            result = spec.Set(result, parsed);
        }

        if (result.CpuThrottleInitial > result.MaxCpuThrottle)
        {
            throw new ArgumentException("Parameter 'max_cpu_throttle' expects an integer in the range of cpu-throttle-initial to 99");
        }

        return result;
    }

    /// <summary>All parameters as <c>query-migrate-parameters</c> returns them.</summary>
    public static JsonObject ToJson(MigrationParameters parameters)
    {
        var json = new JsonObject();
        foreach (var spec in Integers)
        {
            json[spec.Name] = spec.Get(parameters);
        }

        foreach (var spec in Booleans)
        {
            json[spec.Name] = spec.Get(parameters);
        }
        foreach (var spec in Strings)
        {
            json[spec.Name] = spec.Get(parameters);
        }

        return json;
    }
}
