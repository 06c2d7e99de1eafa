using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using MiniVmm.Migration.Stream;
using MiniVmm.Migration.VMState;
using MiniVmm.Runstate;

namespace MiniVmm.Migration.Savevm;

/// <summary>
/// Writes the state of every registry entry into a migration stream, phase by phase, as
/// QEMU's <c>qemu_savevm_state_*</c> functions do: the header and configuration, START
/// sections (setup), PART sections (iteration rounds), then at switchover END sections, FULL
/// sections, EOF and the vmdesc JSON. The core writes every section header and footer; the
/// handlers only write bodies. A handler failure sets the stream's sticky error and is thrown
/// as a <see cref="MigrationStreamException"/> naming the section. Every byte written is
/// counted by <see cref="SectionKind"/> in <see cref="Bytes"/>.
/// </summary>
public sealed partial class SaveStateWriter
{
    private readonly SaveStateRegistry _registry;
    private readonly MigrationStreamWriter _stream;
    private readonly SavevmOptions _options;
    private readonly BigLock _bql;
    private readonly ILogger _logger;
    private readonly SectionByteCounts _bytes;

    /// <summary>Creates a writer over <paramref name="stream"/>.</summary>
    /// <param name="registry">The entries to save.</param>
    /// <param name="stream">The stream.</param>
    /// <param name="options">The wire format.</param>
    /// <param name="bql">The big lock.</param>
    /// <param name="logger">Where failures are logged.</param>
    /// <param name="bytes">Where written bytes are counted by kind; a fresh count when null.</param>
    public SaveStateWriter(
        SaveStateRegistry registry, MigrationStreamWriter stream, SavevmOptions options, BigLock bql, ILogger? logger = null,
        SectionByteCounts? bytes = null)
    {
        _registry = registry;
        _stream = stream;
        _options = options;
        _bql = bql;
        _logger = logger ?? NullLogger.Instance;
        _bytes = bytes ?? new SectionByteCounts();
    }

    /// <summary>The stream being written.</summary>
    public MigrationStreamWriter Stream => _stream;

    /// <summary>
    /// The bytes written so far by section kind: a section from its type byte through its
    /// footer, everything outside sections as <see cref="SectionKind.Other"/>.
    /// </summary>
    public SectionByteCounts Bytes => _bytes;

    /// <summary>
    /// Writes the file header and the configuration section. Migration thread; QEMU 7.2 runs
    /// this without the big lock, master with it.
    /// </summary>
    public void WriteHeader(IReadOnlyList<string>? capabilities = null)
    {
        CheckSetupLock();
        long start = _stream.BytesWritten;
        try
        {
            _stream.PutBe32(StreamHeader.Magic);
            _stream.PutBe32(StreamHeader.Version);
            if (_options.SendConfiguration)
            {
                _stream.PutByte((byte)SectionType.Configuration);
                new MachineConfiguration(_options.MachineName, capabilities ?? []).Write(_stream);
            }
        }
        finally
        {
            CountSince(start, SectionKind.Other);
        }
    }

    /// <summary>
    /// Writes a COMMAND element (<c>0x08, be16 command, be16 length, payload</c>) and flushes it,
    /// as QEMU's <c>qemu_savevm_command_send</c>. Migration thread.
    /// </summary>
    public void WriteCommand(MigrationCommand command, ReadOnlySpan<byte> payload)
    {
        if (payload.Length > ushort.MaxValue)
        {
            throw new ArgumentOutOfRangeException(nameof(payload), "a command payload is at most 65535 bytes");
        }

        long start = _stream.BytesWritten;
        try
        {
            _stream.PutByte((byte)SectionType.Command);
            _stream.PutBe16((ushort)command);
            _stream.PutBe16((ushort)payload.Length);
            _stream.PutBuffer(payload);
        }
        finally
        {
            CountSince(start, SectionKind.Other);
        }

        _stream.Flush();
    }

    /// <summary>
    /// Asks the destination to open the return path and to answer a PING with
    /// <paramref name="ping"/> (QEMU sends <c>OPEN_RETURN_PATH</c> then <c>PING 1</c> right
    /// after the header). Migration thread.
    /// </summary>
    public void WriteOpenReturnPath(uint ping)
    {
        WriteCommand(MigrationCommand.OpenReturnPath, []);
        Span<byte> value = stackalloc byte[sizeof(uint)];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(value, ping);
        WriteCommand(MigrationCommand.Ping, value);
    }

    /// <summary>
    /// Writes a START section for every active entry with a save_setup callback, in registry
    /// order. Migration thread; big lock as for <see cref="WriteHeader(IReadOnlyList{string})"/>.
    /// </summary>
    public void Setup()
    {
        CheckSetupLock();
        foreach (SaveStateEntry entry in _registry.Entries)
        {
            if (!entry.Has(SaveVmHandlerFeatures.SaveSetup) || !entry.IsActive())
            {
                continue;
            }

            WriteSection(entry, SectionType.Start, static (h, s) => h.SaveSetup(s), "save_setup");
        }
    }

    /// <summary>
    /// One iteration round: a PART section for each active entry with save_live_iterate,
    /// stopping early when the stream's rate limit is reached and, for QEMU 7.2, at the first
    /// entry that still has data. Migration thread, big lock not held.
    /// </summary>
    /// <param name="everyEntry">
    /// Iterate every entry each round whatever the target (QEMU ≥ 9.0's rule). The migration
    /// thread asks for it with switchover-ack, whose devices would otherwise starve behind an
    /// entry that never runs out of data.
    /// </param>
    /// <returns><see cref="IterationOutcome.Finished"/> when every entry has sent all it had.</returns>
    public IterationOutcome Iterate(bool everyEntry = false)
    {
        IterationOutcome result = IterationOutcome.Finished;
        foreach (SaveStateEntry entry in _registry.Entries)
        {
            if (!entry.Has(SaveVmHandlerFeatures.SaveLiveIterate) || !entry.IsActive() || !entry.Handlers!.IsActiveIterate())
            {
                continue;
            }

            if (_stream.IsRateLimited)
            {
                return IterationOutcome.MoreData;
            }

            IterationOutcome outcome = IterationOutcome.Finished;
            WriteSection(entry, SectionType.Part, (h, s) => outcome = h.SaveLiveIterate(s), "save_live_iterate");
            if (outcome == IterationOutcome.MoreData)
            {
                result = IterationOutcome.MoreData;
                if (_options.SerialiseIteration && !everyEntry)
                {
                    break;
                }
            }
        }

        return result;
    }

    /// <summary>Sum of every active entry's cheap pending estimate. Migration thread, big lock not held.</summary>
    public PendingSize PendingEstimate() => SumPending(static h => h.StatePendingEstimate());

    /// <summary>Sum of every active entry's exact pending size (may synchronise dirty bitmaps). Migration thread, big lock not held.</summary>
    public PendingSize PendingExact() => SumPending(static h => h.StatePendingExact());

    /// <summary>
    /// The switchover: END sections for active iterable entries, FULL sections for every entry
    /// with save_state or a needed VMState description, EOF, then the vmdesc JSON; flushes.
    /// Big lock held, VM stopped.
    /// </summary>
    public void CompletePrecopy()
    {
        _bql.AssertHeld();
        foreach (SaveStateEntry entry in _registry.Entries)
        {
            if (!entry.Has(SaveVmHandlerFeatures.SaveLiveCompletePrecopy) || !entry.IsActive())
            {
                continue;
            }

            WriteSection(entry, SectionType.End, static (h, s) => h.SaveLiveCompletePrecopy(s), "save_live_complete_precopy");
        }

        var vmdesc = new VmDescriptionWriter();
        vmdesc.StartObject();
        vmdesc.Int64("page_size", StreamHeader.TargetPageSize);
        vmdesc.StartArray("devices");
        foreach (SaveStateEntry entry in _registry.Entries)
        {
            if (!entry.HasFullSection || (entry.Vmsd is { } vmsd && !vmsd.IsNeeded(entry.Owner)))
            {
                continue;
            }

            vmdesc.StartObject();
            vmdesc.String("name", entry.IdStr);
            vmdesc.Int64("instance_id", entry.InstanceId);
            WriteFullSection(entry, vmdesc);
            vmdesc.EndObject();
        }

        vmdesc.EndArray();
        vmdesc.EndObject();
        long start = _stream.BytesWritten;
        try
        {
            _stream.PutByte((byte)SectionType.Eof);
            if (_options.SendVmDescription)
            {
                byte[] json = vmdesc.ToUtf8();
                _stream.PutByte((byte)SectionType.VmDescription);
                _stream.PutBe32((uint)json.Length);
                _stream.PutBuffer(json);
            }
        }
        finally
        {
            CountSince(start, SectionKind.Other);
        }

        _stream.Flush();
    }

    /// <summary>
    /// Calls save_cleanup on every entry that has handlers, active or not, whether or not
    /// setup ran; a failing cleanup is logged and the others still run. Big lock held.
    /// </summary>
    public void Cleanup()
    {
        _bql.AssertHeld();
        foreach (SaveStateEntry entry in _registry.Entries)
        {
            try
            {
                entry.Handlers?.SaveCleanup();
            }
            catch (Exception error)
            {
                LogCleanupFailed(error, entry.IdStr, entry.SectionId);
            }
        }
    }

    private void WriteFullSection(SaveStateEntry entry, VmDescriptionWriter vmdesc)
    {
        long sectionStart = _stream.BytesWritten;
        try
        {
            WriteFullSectionCounted(entry, vmdesc);
        }
        finally
        {
            CountSince(sectionStart, entry.Kind);
        }
    }

    private void WriteFullSectionCounted(SaveStateEntry entry, VmDescriptionWriter vmdesc)
    {
        WriteHeader(entry, SectionType.Full);
        long start = _stream.BytesWritten;
        try
        {
            if (entry.Vmsd is { } vmsd)
            {
                vmsd.Save(_stream, entry.Owner, vmdesc);
            }
            else
            {
                entry.Handlers!.SaveState(_stream);
                long size = _stream.BytesWritten - start;
                vmdesc.Int64("size", size);
                vmdesc.StartArray("fields");
                vmdesc.StartObject();
                vmdesc.String("name", "data");
                vmdesc.Int64("size", size);
                vmdesc.String("type", "buffer");
                vmdesc.EndObject();
                vmdesc.EndArray();
            }
        }
        catch (Exception error)
        {
            throw Fail(entry, "save_state", error);
        }

        WriteFooter(entry);
    }

    private void WriteSection(
        SaveStateEntry entry, SectionType type, Action<ISaveVmHandlers, MigrationStreamWriter> body, string callback)
    {
        long start = _stream.BytesWritten;
        try
        {
            WriteHeader(entry, type);
            try
            {
                body(entry.Handlers!, _stream);
            }
            catch (Exception error)
            {
                throw Fail(entry, callback, error);
            }

            WriteFooter(entry);
        }
        finally
        {
            CountSince(start, entry.Kind);
        }
    }

    private void CountSince(long start, SectionKind kind) => _bytes.Add(kind, _stream.BytesWritten - start);

    private void WriteHeader(SaveStateEntry entry, SectionType type)
    {
        _stream.PutByte((byte)type);
        _stream.PutBe32((uint)entry.SectionId);
        if (type is SectionType.Start or SectionType.Full)
        {
            _stream.PutCountedString(entry.IdStr);
            _stream.PutBe32(entry.InstanceId);
            _stream.PutBe32((uint)entry.VersionId);
        }
    }

    private void WriteFooter(SaveStateEntry entry)
    {
        if (_options.SendSectionFooter)
        {
            _stream.PutByte((byte)SectionType.Footer);
            _stream.PutBe32((uint)entry.SectionId);
        }
    }

    private MigrationStreamException Fail(SaveStateEntry entry, string callback, Exception error)
    {
        if (error is MigrationStreamException transportFailure && _stream.HasError)
        {
            // The transport itself failed: keep that as the cause.
            return transportFailure;
        }

        var failure = new MigrationStreamException(
            $"failed to save SaveStateEntry with id(name): {entry.SectionId}({entry.IdStr}): {callback}: {error.Message}",
            _stream.BytesWritten, error);
        _stream.SetError(failure);
        LogSaveFailed(error, entry.IdStr, entry.SectionId, callback);
        return failure;
    }

    private PendingSize SumPending(Func<ISaveVmHandlers, PendingSize> pending)
    {
        PendingSize total = PendingSize.None;
        foreach (SaveStateEntry entry in _registry.Entries)
        {
            if (entry.Handlers is { } handlers && entry.IsActive())
            {
                total += pending(handlers);
            }
        }

        return total;
    }

    private void CheckSetupLock()
    {
        if (_options.Target == WireTarget.QemuMaster)
        {
            _bql.AssertHeld();
        }
        else
        {
            _bql.AssertNotHeld();
        }
    }

    [LoggerMessage(EventId = 2001, Level = LogLevel.Error, Message = "{Callback} of section {IdStr} (id {SectionId}) failed")]
    private partial void LogSaveFailed(Exception error, string idStr, int sectionId, string callback);

    [LoggerMessage(EventId = 2002, Level = LogLevel.Warning, Message = "save_cleanup of section {IdStr} (id {SectionId}) failed")]
    private partial void LogCleanupFailed(Exception error, string idStr, int sectionId);
}
