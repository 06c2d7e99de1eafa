using MiniVmm.Migration.Savevm;
using MiniVmm.Migration.Stream;
using MiniVmm.Runstate;

namespace MiniVmm.Migration.Tests.Savevm;

/// <summary>One callback a <see cref="RecordingHandlers"/> received.</summary>
/// <param name="Handler">The name the handler was created with.</param>
/// <param name="Callback">The <see cref="ISaveVmHandlers"/> member, e.g. <c>SaveSetup</c>.</param>
/// <param name="BigLockHeld">Whether the calling thread held the big lock.</param>
/// <param name="ThreadId">The managed id of the calling thread.</param>
/// <param name="Body">For LoadState: the tag of the body read; for the save callbacks: the tag written.</param>
/// <param name="Version">For LoadState: the version the core passed.</param>
internal sealed record HandlerCall(
    string Handler, string Callback, bool BigLockHeld, int ThreadId, string? Body = null, int? Version = null)
{
    /// <summary>"handler.Callback", the short form order assertions compare.</summary>
    public string Name => $"{Handler}.{Callback}";
}

/// <summary>The calls of every <see cref="RecordingHandlers"/> sharing it, in call order (thread-safe).</summary>
internal sealed class CallLog
{
    private readonly List<HandlerCall> _calls = [];
    private readonly Lock _gate = new();

    public void Add(HandlerCall call)
    {
        lock (_gate)
        {
            _calls.Add(call);
        }
    }

    public IReadOnlyList<HandlerCall> Calls
    {
        get
        {
            lock (_gate)
            {
                return [.. _calls];
            }
        }
    }

    /// <summary>"handler.Callback" of every call, optionally only those of the given callbacks.</summary>
    public IReadOnlyList<string> Names(params string[] callbacks) =>
        [.. Calls.Where(c => callbacks.Length == 0 || callbacks.Contains(c.Callback)).Select(c => c.Name)];

    public void Clear()
    {
        lock (_gate)
        {
            _calls.Clear();
        }
    }
}

/// <summary>
/// A test double for <see cref="ISaveVmHandlers"/>: records every action callback (not the
/// is_active/is_active_iterate/has_postcopy queries) with the big-lock state and thread, and
/// writes a recognisable, self-delimiting body: counted string <c>"name:callback[n]"</c>, be32
/// padding length, that many 0xA5 bytes. LoadState reads the same shape back and records the tag.
/// </summary>
internal sealed class RecordingHandlers : ISaveVmHandlers
{
    public const byte PaddingByte = 0xA5;

    private readonly CallLog _log;
    private readonly BigLock _bql;
    private int _iterations;

    public RecordingHandlers(string name, CallLog log, BigLock bql, SaveVmHandlerFeatures features = SaveVmHandlerFeatures.Live)
    {
        Name = name;
        _log = log;
        _bql = bql;
        Features = features;
    }

    public string Name { get; }

    public SaveVmHandlerFeatures Features { get; }

    /// <summary>What the handler's sections carry (for byte accounting); Other unless set.</summary>
    public SectionKind Kind { get; init; } = SectionKind.Other;

    /// <summary>What <see cref="IsActive"/> answers.</summary>
    public bool Active { get; set; } = true;

    /// <summary>What <see cref="IsActiveIterate"/> answers.</summary>
    public bool ActiveIterate { get; set; } = true;

    /// <summary>What each SaveLiveIterate call returns, in turn; Finished once empty.</summary>
    public Queue<IterationOutcome> IterationOutcomes { get; } = new();

    /// <summary>Bytes of padding each save body carries (to reach a rate limit).</summary>
    public int PaddingBytes { get; set; }

    /// <summary>Thrown by LoadState when set.</summary>
    public Exception? LoadStateFailure { get; set; }

    /// <summary>Thrown by LoadSetup when set.</summary>
    public Exception? LoadSetupFailure { get; set; }

    /// <summary>The pending sizes the estimate and exact callbacks report.</summary>
    public PendingSize Pending { get; set; } = PendingSize.None;

    /// <summary>The body tags LoadState read, in order.</summary>
    public List<string> Received { get; } = [];

    public void SavePrepare() => Record(nameof(SavePrepare));

    public void SaveSetup(MigrationStreamWriter stream) => WriteBody(stream, nameof(SaveSetup), "setup");

    public IterationOutcome SaveLiveIterate(MigrationStreamWriter stream)
    {
        int round = ++_iterations;
        WriteBody(stream, nameof(SaveLiveIterate), $"iterate{round}");
        return IterationOutcomes.Count > 0 ? IterationOutcomes.Dequeue() : IterationOutcome.Finished;
    }

    public PendingSize StatePendingEstimate()
    {
        Record(nameof(StatePendingEstimate));
        return Pending;
    }

    public PendingSize StatePendingExact()
    {
        Record(nameof(StatePendingExact));
        return Pending;
    }

    public bool IsActive() => Active;

    public bool IsActiveIterate() => ActiveIterate;

    public void SaveLiveCompletePrecopy(MigrationStreamWriter stream) =>
        WriteBody(stream, nameof(SaveLiveCompletePrecopy), "complete");

    public void SaveState(MigrationStreamWriter stream) => WriteBody(stream, nameof(SaveState), "state");

    public void SaveCleanup() => Record(nameof(SaveCleanup));

    public void LoadSetup()
    {
        Record(nameof(LoadSetup));
        if (LoadSetupFailure is { } failure)
        {
            throw failure;
        }
    }

    public void LoadState(MigrationStreamReader stream, int versionId)
    {
        string tag = stream.GetCountedString();
        uint padding = stream.GetBe32();
        stream.Skip(padding);
        Received.Add(tag);
        _log.Add(new HandlerCall(Name, nameof(LoadState), _bql.IsHeld, Environment.CurrentManagedThreadId, tag, versionId));
        if (LoadStateFailure is { } failure)
        {
            throw failure;
        }
    }

    public void LoadCleanup() => Record(nameof(LoadCleanup));

    /// <summary>The body tag this handler writes for <paramref name="what"/> ("setup", "iterate1", "complete", "state").</summary>
    public string Tag(string what) => $"{Name}:{what}";

    private void WriteBody(MigrationStreamWriter stream, string callback, string what)
    {
        string tag = Tag(what);
        _log.Add(new HandlerCall(Name, callback, _bql.IsHeld, Environment.CurrentManagedThreadId, tag));
        stream.PutCountedString(tag);
        stream.PutBe32((uint)PaddingBytes);
        byte[] padding = new byte[PaddingBytes];
        Array.Fill(padding, PaddingByte);
        stream.PutBuffer(padding);
    }

    private void Record(string callback) =>
        _log.Add(new HandlerCall(Name, callback, _bql.IsHeld, Environment.CurrentManagedThreadId));
}
