using MiniVmm.Devices.Models;
using MiniVmm.Host.Qmp;

namespace MiniVmm.Host.CommandLine;

/// <summary>
/// Checks and decodes <see cref="RunArguments"/> into <see cref="VmOptions"/> with QEMU's rules
/// and QEMU-style messages (<c>-m foo: ...</c>).
/// </summary>
public static class VmOptionsParser
{
    private const ulong RamAlignment = 8 * 1024;
    private const string UnixPrefix = "unix:";

    private static readonly string[] MemoryKeys = ["size"];
    private static readonly string[] DisplayKeys = ["type"];
    private static readonly string[] NameKeys = ["guest", "process", "debug-threads"];
    private static readonly string[] UnixSocketKeys = ["path", "server", "wait"];

    /// <summary>Decodes every option.</summary>
    /// <exception cref="InvalidCommandLineException">An option QEMU would reject, or one MiniVmm does not support.</exception>
    public static VmOptions Parse(RunArguments arguments) => new()
    {
        Machine = ParseMachine(arguments.Machine.LastOrDefault()),
        MemoryBytes = ParseMemory(arguments.Memory.LastOrDefault()),
        StartPaused = arguments.StartPaused,
        NoDefaults = arguments.NoDefaults,
        Display = ParseDisplay(arguments.Display.LastOrDefault()),
        Name = ParseName(arguments.Name.LastOrDefault()),
        PidFile = ParsePidFile(arguments.PidFile.LastOrDefault()),
        QmpSockets = [.. arguments.Qmp.Select(ParseQmp)],
        Incoming = ParseIncoming(arguments.Incoming.LastOrDefault()),
        Devices = [.. arguments.Devices.Select(ParseDevice)],
        Guest = ParseGuest(arguments.Guest.LastOrDefault()),
        Objects = ParseObjects(arguments.Objects.Where(o => !IsMemoryBackend(o))),
        MemoryBackends = ParseMemoryBackends(arguments.Objects),
        MemPrealloc = arguments.MemPrealloc,
    };

    /// <summary>
    /// Checks that object ids are unique across types and that <c>-machine memory-backend=ID</c>
    /// names a backend whose size agrees with <c>-m</c> (QEMU's messages).
    /// </summary>
    public static VmOptions Validate(VmOptions options)
    {
        var ids = new HashSet<string>(StringComparer.Ordinal);
        foreach ((string id, string text) in options.Objects.Select(o => (o.Id, o.Text)).Concat(options.MemoryBackends.Select(m => (m.Id, m.Text))))
        {
            if (!ids.Add(id))
            {
                throw new InvalidCommandLineException($"-object {text}: attempt to add duplicate property '{id}' to object (type 'container')");
            }
        }

        _ = options.IncomingPrefault; // x-incoming-prefault must be on or off
        if (!options.Machine.Properties.TryGetValue("memory-backend", out string? backendId))
        {
            return options;
        }

        MemoryBackendSpec backend = options.MemoryBackends.FirstOrDefault(m => m.Id == backendId)
            ?? throw new InvalidCommandLineException($"Memory backend '{backendId}' not found");
        if (options.MemoryBytes != 0 && options.MemoryBytes != backend.Size)
        {
            throw new InvalidCommandLineException("Machine memory size does not match the size of the memory backend");
        }

        return options with { MemoryBytes = backend.Size, MemoryBackend = backend };
    }

    private static bool IsMemoryBackend(string text) =>
        QemuOptionList.Parse("-object", text, "qom-type", knownKeys: null).GetValueOrDefault("qom-type", "") == MemoryBackendSpec.QomType;

    /// <summary>Every <c>-object memory-backend-memfd,...</c>.</summary>
    public static IReadOnlyList<MemoryBackendSpec> ParseMemoryBackends(IEnumerable<string> texts) =>
        [.. texts.Where(IsMemoryBackend).Select(ParseMemoryBackend)];

    /// <summary>
    /// <c>-object memory-backend-memfd,id=ID,size=SIZE[,share=on][,hugetlb=on][,hugetlbsize=SIZE][,prealloc=on][,seal=on]</c>.
    /// MiniVmm's RAM stays a shared, sealed memfd (the guest harness maps it): <c>share=off</c> and
    /// <c>seal=off</c> are refused, and <c>hugetlbsize</c> must be the host's default huge page size.
    /// </summary>
    public static MemoryBackendSpec ParseMemoryBackend(string text)
    {
        var values = new Dictionary<string, string>(QemuOptionList.Parse("-object", text, "qom-type", knownKeys: null));
        values.Remove("qom-type");
        string id = values.GetValueOrDefault("id", "");
        if (id.Length == 0)
        {
            throw new InvalidCommandLineException($"-object {text}: Parameter 'id' is missing");
        }

        if (values.Keys.FirstOrDefault(k => k != "id" && !MemoryBackendSpec.Properties.Contains(k)) is { } stray)
        {
            throw new InvalidCommandLineException($"-object {text}: Invalid parameter '{stray}'");
        }

        if (!values.TryGetValue("size", out string? sizeText) || !MemorySize.TryParse(sizeText, 1, out ulong size) || size == 0)
        {
            throw new InvalidCommandLineException($"-object {text}: can't create backend with size 0");
        }

        if (size % RamAlignment != 0)
        {
            throw new InvalidCommandLineException($"-object {text}: size 0x{size:x} is not a multiple of 8 KiB");
        }

        bool Flag(string key, bool fallback) =>
            values.TryGetValue(key, out string? value) ? QemuOptionList.ParseBoolean("-object", text, key, value) : fallback;
        if (!Flag("share", true))
        {
            throw new InvalidCommandLineException(
                $"-object {text}: share=off is not supported: MiniVmm's guest RAM is always a shared memfd (the guest harness maps it)");
        }

        if (!Flag("seal", true))
        {
            throw new InvalidCommandLineException($"-object {text}: seal=off is not supported: MiniVmm always seals guest RAM against shrinking");
        }

        bool hugeTlb = Flag("hugetlb", false);
        if (values.TryGetValue("hugetlbsize", out string? hugeSizeText))
        {
            if (!hugeTlb)
            {
                throw new InvalidCommandLineException($"-object {text}: hugetlbsize needs hugetlb=on");
            }

            if (!MemorySize.TryParse(hugeSizeText, 1, out ulong hugeSize) || hugeSize != 2 * MemorySize.MiB)
            {
                throw new InvalidCommandLineException($"-object {text}: hugetlbsize must be the host's default huge page size, 2M");
            }
        }

        if (values.TryGetValue("prealloc-threads", out string? threads) && (!uint.TryParse(threads, out uint count) || count == 0))
        {
            throw new InvalidCommandLineException($"-object {text}: Parameter 'prealloc-threads' expects a positive number");
        }

        return new MemoryBackendSpec(id, size, hugeTlb, Flag("prealloc", false), text);
    }

    /// <summary>Every <c>-object</c>; ids must be unique (QEMU's message otherwise).</summary>
    public static IReadOnlyList<TlsCredentialsSpec> ParseObjects(IEnumerable<string> texts)
    {
        var specs = new List<TlsCredentialsSpec>();
        foreach (string text in texts)
        {
            TlsCredentialsSpec spec = ParseObject(text);
            if (specs.Any(s => s.Id == spec.Id))
            {
                throw new InvalidCommandLineException(
                    $"-object {text}: attempt to add duplicate property '{spec.Id}' to object (type 'container')");
            }

            specs.Add(spec);
        }

        return specs;
    }

    /// <summary>
    /// <c>-object tls-creds-x509,id=ID,dir=DIR[,endpoint=server|client][,verify-peer=on|off]</c>,
    /// QEMU's defaults (endpoint=client, verify-peer=on); the files are loaded when the machine is built.
    /// </summary>
    public static TlsCredentialsSpec ParseObject(string text)
    {
        IReadOnlyDictionary<string, string> values = QemuOptionList.Parse("-object", text, "qom-type", knownKeys: null);
        string type = values.GetValueOrDefault("qom-type", "");
        if (type.Length == 0)
        {
            throw new InvalidCommandLineException($"-object {text}: Parameter 'qom-type' is missing");
        }

        if (type != TlsCredentialsSpec.QomType)
        {
            throw new InvalidCommandLineException(
                $"-object {text}: invalid object type: {type} (MiniVmm knows {TlsCredentialsSpec.QomType} and {MemoryBackendSpec.QomType})");
        }

        try
        {
            return TlsCredentials(text, values.Where(v => v.Key != "qom-type").ToDictionary(v => v.Key, v => v.Value));
        }
        catch (ArgumentException error)
        {
            throw new InvalidCommandLineException($"-object {text}: {error.Message}");
        }
    }

    /// <summary>
    /// The properties of a <c>tls-creds-x509</c> (from <c>-object</c> or <c>object-add</c>), with
    /// QEMU's messages in an <see cref="ArgumentException"/>.
    /// </summary>
    public static TlsCredentialsSpec TlsCredentials(string text, IReadOnlyDictionary<string, string> properties)
    {
        ArgumentNullException.ThrowIfNull(properties);
        string id = properties.GetValueOrDefault("id", "");
        if (id.Length == 0)
        {
            throw new ArgumentException("Parameter 'id' is missing");
        }

        if (properties.Keys.FirstOrDefault(k => k != "id" && !TlsCredentialsSpec.Properties.Contains(k)) is { } stray)
        {
            throw new ArgumentException($"Property '{TlsCredentialsSpec.QomType}.{stray}' not found");
        }

        string directory = properties.GetValueOrDefault("dir", "");
        if (directory.Length == 0)
        {
            throw new ArgumentException("Missing 'dir' property value");
        }

        MiniVmm.Migration.Transport.Tls.TlsEndpoint endpoint = properties.GetValueOrDefault("endpoint", "client") switch
        {
            "client" => MiniVmm.Migration.Transport.Tls.TlsEndpoint.Client,
            "server" => MiniVmm.Migration.Transport.Tls.TlsEndpoint.Server,
            var other => throw new ArgumentException($"Parameter 'endpoint' does not accept value '{other}'"),
        };
        bool verifyPeer = properties.GetValueOrDefault("verify-peer", "on") switch
        {
            "on" or "yes" or "true" or "y" => true,
            "off" or "no" or "false" or "n" => false,
            _ => throw new ArgumentException("Parameter 'verify-peer' expects 'on' or 'off'"),
        };
        return new TlsCredentialsSpec(id, directory, endpoint, verifyPeer, text);
    }

    /// <summary>
    /// <c>-guest dirty[,rate=PAGES_PER_SECOND]</c> (the built-in guest) or
    /// <c>-guest harness,socket=PATH[,pause-timeout=MS][,connect-timeout=MS]</c> (a guest in a
    /// harness process).
    /// </summary>
    public static GuestSelection ParseGuest(string? text)
    {
        if (text is null)
        {
            return GuestSelection.None;
        }

        IReadOnlyDictionary<string, string> values =
            QemuOptionList.Parse("-guest", text, "type", ["type", "rate", "socket", "pause-timeout", "connect-timeout"]);
        string type = values.GetValueOrDefault("type", "");
        string[] keys = type switch
        {
            "dirty" => ["type", "rate"],
            "harness" => ["type", "socket", "pause-timeout", "connect-timeout"],
            _ => throw new InvalidCommandLineException($"-guest {text}: unknown guest '{type}': use 'dirty' or 'harness'"),
        };
        if (values.Keys.FirstOrDefault(k => !keys.Contains(k)) is { } stray)
        {
            throw new InvalidCommandLineException($"-guest {text}: '{stray}' is not an option of the '{type}' guest");
        }

        if (type == "dirty")
        {
            if (!values.TryGetValue("rate", out string? rate))
            {
                return new GuestSelection(0, null);
            }

            return long.TryParse(rate, out long pages) && pages >= 0
                ? new GuestSelection(pages, null)
                : throw new InvalidCommandLineException($"-guest {text}: rate must be a number of pages per second (0 = unlimited)");
        }

        string socket = values.GetValueOrDefault("socket", "");
        if (socket.Length == 0)
        {
            throw new InvalidCommandLineException($"-guest {text}: the harness needs socket=PATH (the UNIX socket MiniVmm listens on)");
        }

        return new GuestSelection(null, new MiniVmm.GuestHarness.HarnessGuestOptions(
            socket,
            Milliseconds(text, values, "pause-timeout", MiniVmm.GuestHarness.HarnessGuestOptions.DefaultPauseTimeout),
            Milliseconds(text, values, "connect-timeout", MiniVmm.GuestHarness.HarnessGuestOptions.DefaultConnectTimeout)));
    }

    private static TimeSpan Milliseconds(string text, IReadOnlyDictionary<string, string> values, string key, TimeSpan fallback)
    {
        if (!values.TryGetValue(key, out string? given))
        {
            return fallback;
        }

        return int.TryParse(given, out int ms) && ms > 0
            ? TimeSpan.FromMilliseconds(ms)
            : throw new InvalidCommandLineException($"-guest {text}: {key} must be a positive number of milliseconds");
    }

    /// <summary><c>-incoming URI</c> or <c>-incoming defer</c>; the URI is checked when the migration starts.</summary>
    public static string? ParseIncoming(string? text) =>
        text is { Length: 0 } ? throw new InvalidCommandLineException("-incoming: the URI is empty") : text;

    /// <summary><c>-device DRIVER[,key=value...]</c>: the driver and its properties; drivers are checked when the machine is built.</summary>
    public static DeviceSpec ParseDevice(string text)
    {
        var properties = new Dictionary<string, string>(QemuOptionList.Parse("-device", text, "driver", knownKeys: null));
        if (!properties.Remove("driver", out string? driver) || driver.Length == 0)
        {
            throw new InvalidCommandLineException($"-device {text}: Parameter 'driver' is missing");
        }

        return new DeviceSpec(driver, properties, text);
    }

    /// <summary><c>-M [type=]none[,key=value...]</c>; without <c>-M</c> the machine is <c>none</c>.</summary>
    public static MachineSelection ParseMachine(string? text)
    {
        if (text is null)
        {
            return new MachineSelection(MachineSelection.None, new Dictionary<string, string>());
        }

        var properties = new Dictionary<string, string>(QemuOptionList.Parse("-machine", text, "type", knownKeys: null));
        string type = properties.Remove("type", out string? given) ? given : MachineSelection.None;
        if (type != MachineSelection.None)
        {
            throw new InvalidCommandLineException(
                $"-machine {text}: unsupported machine type '{type}': only '{MachineSelection.None}' is supported");
        }

        return new MachineSelection(type, properties);
    }

    /// <summary><c>-m [size=]SIZE</c>: a bare number is MiB; rounded up to 8 KiB. Without <c>-m</c>, the none machine's 0.</summary>
    public static ulong ParseMemory(string? text)
    {
        if (text is null)
        {
            return 0;
        }

        IReadOnlyDictionary<string, string> values = QemuOptionList.Parse("-m", text, "size", MemoryKeys);
        if (!values.TryGetValue("size", out string? size) || size.Length == 0)
        {
            throw new InvalidCommandLineException($"-m {text}: missing 'size' option value");
        }

        if (!MemorySize.TryParse(size, MemorySize.MiB, out ulong bytes) || bytes > ulong.MaxValue - RamAlignment)
        {
            throw new InvalidCommandLineException($"-m {text}: Parameter 'size' {MemorySize.Syntax}");
        }

        return (bytes + RamAlignment - 1) / RamAlignment * RamAlignment;
    }

    /// <summary><c>-display none</c>; nothing else is supported.</summary>
    public static string ParseDisplay(string? text)
    {
        if (text is null)
        {
            return "none";
        }

        string type = QemuOptionList.Parse("-display", text, "type", DisplayKeys).GetValueOrDefault("type", "");
        return type == "none"
            ? type
            : throw new InvalidCommandLineException($"-display {text}: unsupported display '{type}': only 'none' is supported");
    }

    /// <summary><c>-name [guest=]NAME[,process=...][,debug-threads=on|off]</c>: the guest name.</summary>
    public static string? ParseName(string? text)
    {
        if (text is null)
        {
            return null;
        }

        IReadOnlyDictionary<string, string> values = QemuOptionList.Parse("-name", text, "guest", NameKeys);
        if (values.TryGetValue("debug-threads", out string? debugThreads))
        {
            QemuOptionList.ParseBoolean("-name", text, "debug-threads", debugThreads);
        }

        return values.GetValueOrDefault("guest");
    }

    /// <summary><c>-pidfile FILE</c>.</summary>
    public static string? ParsePidFile(string? text) =>
        text is { Length: 0 } ? throw new InvalidCommandLineException("-pidfile: the file name is empty") : text;

    /// <summary><c>-qmp unix:PATH,server=on[,wait=off]</c> (also <c>server,nowait</c>); only UNIX server sockets.</summary>
    public static QmpSocketOptions ParseQmp(string text)
    {
        if (!text.StartsWith(UnixPrefix, StringComparison.Ordinal))
        {
            throw new InvalidCommandLineException(
                $"-qmp {text}: unsupported character device: only unix: sockets are supported (e.g. unix:/tmp/qmp.sock,server=on,wait=off)");
        }

        IReadOnlyDictionary<string, string> values =
            QemuOptionList.Parse("-qmp", text[UnixPrefix.Length..], "path", UnixSocketKeys, shownValue: text);
        string path = values.GetValueOrDefault("path", "");
        if (path.Length == 0)
        {
            throw new InvalidCommandLineException($"-qmp {text}: the socket path is empty");
        }

        bool server = values.TryGetValue("server", out string? serverText)
            && QemuOptionList.ParseBoolean("-qmp", text, "server", serverText);
        if (!server)
        {
            throw new InvalidCommandLineException(
                $"-qmp {text}: only listening sockets are supported: add ',server=on,wait=off'");
        }

        bool wait = !values.TryGetValue("wait", out string? waitText) || QemuOptionList.ParseBoolean("-qmp", text, "wait", waitText);
        return new QmpSocketOptions(path, wait);
    }
}
