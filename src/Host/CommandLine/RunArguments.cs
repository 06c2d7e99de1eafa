namespace MiniVmm.Host.CommandLine;

/// <summary>
/// The options of <c>minivmm run</c> as typed, before checking. Options that QEMU lets repeat
/// keep every occurrence; for most the last one wins.
/// </summary>
public sealed record RunArguments
{
    /// <summary>Every <c>-M</c>/<c>-machine</c> value.</summary>
    public IReadOnlyList<string> Machine { get; init; } = [];

    /// <summary>Every <c>-m</c> value.</summary>
    public IReadOnlyList<string> Memory { get; init; } = [];

    /// <summary>Whether <c>-S</c> was given.</summary>
    public bool StartPaused { get; init; }

    /// <summary>Whether <c>-mem-prealloc</c> was given.</summary>
    public bool MemPrealloc { get; init; }

    /// <summary>Whether <c>-nodefaults</c> was given.</summary>
    public bool NoDefaults { get; init; }

    /// <summary>Every <c>-display</c> value.</summary>
    public IReadOnlyList<string> Display { get; init; } = [];

    /// <summary>Every <c>-name</c> value.</summary>
    public IReadOnlyList<string> Name { get; init; } = [];

    /// <summary>Every <c>-pidfile</c> value.</summary>
    public IReadOnlyList<string> PidFile { get; init; } = [];

    /// <summary>Every <c>-qmp</c> value.</summary>
    public IReadOnlyList<string> Qmp { get; init; } = [];

    /// <summary>Every <c>-incoming</c> value.</summary>
    public IReadOnlyList<string> Incoming { get; init; } = [];

    /// <summary>Every <c>-device</c> value, in order.</summary>
    public IReadOnlyList<string> Devices { get; init; } = [];

    /// <summary>Every <c>-object</c> value, in order.</summary>
    public IReadOnlyList<string> Objects { get; init; } = [];

    /// <summary>Every <c>-guest</c> value.</summary>
    public IReadOnlyList<string> Guest { get; init; } = [];
}
