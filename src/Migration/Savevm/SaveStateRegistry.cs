using System.Text;
using MiniVmm.Migration.VMState;

namespace MiniVmm.Migration.Savevm;

/// <summary>
/// The savevm registry (QEMU's <c>savevm_state.handlers</c>): every entry that takes part in
/// saving and loading VM state, in the order the stream uses. Entries are sorted by descending
/// priority, then by registration. Section ids come from a per-registry counter and are never
/// reused. A second entry with an (idstr, instance) that is already taken is rejected
/// (QEMU ≥ 8.2).
/// </summary>
public sealed class SaveStateRegistry
{
    /// <summary>QEMU's <c>VMSTATE_INSTANCE_ID_ANY</c>: pick one more than the highest instance of that name.</summary>
    public const uint InstanceIdAny = uint.MaxValue;

    /// <summary>The longest idstr a section header can carry (one length byte).</summary>
    public const int MaxIdStrBytes = 255;

    private readonly object _gate = new();
    private readonly List<SaveStateEntry> _entries = [];
    private SaveStateEntry[] _snapshot = [];
    private int _nextSectionId;

    /// <summary>Every entry in stream order (a snapshot).</summary>
    public IReadOnlyList<SaveStateEntry> Entries => Volatile.Read(ref _snapshot);

    /// <summary>
    /// Registers live handlers (QEMU's <c>register_savevm_live</c>). With
    /// <see cref="InstanceIdAny"/> the instance is one more than the highest registered for
    /// <paramref name="idStr"/>, or 0.
    /// </summary>
    public SaveStateEntry RegisterLive(
        string idStr, uint instanceId, int versionId, ISaveVmHandlers handlers,
        MigrationPriority priority = MigrationPriority.Default)
    {
        ArgumentNullException.ThrowIfNull(handlers);
        CheckIdStr(idStr);
        lock (_gate)
        {
            uint instance = instanceId == InstanceIdAny ? NextInstanceId(idStr) : instanceId;
            return Insert(new SaveStateEntry(
                idStr, instance, versionId, _nextSectionId++, priority, handlers, null, handlers, -1, null));
        }
    }

    /// <summary>
    /// Registers a VMState description with the object it saves and loads (QEMU's
    /// <c>vmstate_register_with_alias_id</c>). With a <paramref name="devicePath"/> the idstr
    /// becomes <c>path/name</c> and the bare name stays loadable as a compat name.
    /// </summary>
    public SaveStateEntry RegisterVMState(
        VMStateDescription vmsd, object state, uint instanceId = InstanceIdAny, string? devicePath = null,
        int aliasId = -1)
    {
        ArgumentNullException.ThrowIfNull(vmsd);
        ArgumentNullException.ThrowIfNull(state);
        string idStr = devicePath is null ? vmsd.Name : $"{devicePath}/{vmsd.Name}";
        CheckIdStr(idStr);
        lock (_gate)
        {
            SectionName? compat = null;
            uint instance = instanceId;
            if (devicePath is not null)
            {
                compat = new SectionName(
                    vmsd.Name, instanceId == InstanceIdAny ? NextCompatInstanceId(vmsd.Name) : instanceId);
                instance = InstanceIdAny;
            }

            if (instance == InstanceIdAny)
            {
                instance = NextInstanceId(idStr);
            }

            return Insert(new SaveStateEntry(
                idStr, instance, vmsd.VersionId, _nextSectionId++, vmsd.Priority, null, vmsd, state, aliasId, compat));
        }
    }

    /// <summary>Removes one entry; false if it was not registered.</summary>
    public bool Unregister(SaveStateEntry entry)
    {
        lock (_gate)
        {
            bool removed = _entries.Remove(entry);
            Publish();
            return removed;
        }
    }

    /// <summary>Removes every live entry with this idstr and owner (<c>unregister_savevm</c>); returns how many.</summary>
    public int UnregisterLive(string idStr, object owner) =>
        RemoveWhere(e => e.IdStr == idStr && ReferenceEquals(e.Owner, owner));

    /// <summary>Removes every entry of this description and state object (<c>vmstate_unregister</c>); returns how many.</summary>
    public int UnregisterVMState(VMStateDescription vmsd, object state) =>
        RemoveWhere(e => ReferenceEquals(e.Vmsd, vmsd) && ReferenceEquals(e.Owner, state));

    /// <summary>
    /// Finds the entry a START or FULL section belongs to (QEMU's <c>find_se</c>): by idstr and
    /// instance (or alias), or by the compat name of a device-path-prefixed entry.
    /// </summary>
    public SaveStateEntry? FindForLoad(string idStr, uint instanceId)
    {
        foreach (SaveStateEntry entry in Entries)
        {
            if (Matches(entry, idStr, instanceId))
            {
                return entry;
            }
        }

        return null;
    }

    private static bool Matches(SaveStateEntry entry, string idStr, uint instanceId)
    {
        bool aliasMatches = entry.AliasId >= 0 && instanceId == (uint)entry.AliasId;
        if (entry.IdStr == idStr && (instanceId == entry.InstanceId || aliasMatches))
        {
            return true;
        }

        return entry.Compat is { } compat
            && compat.IdStr == idStr
            && entry.IdStr.Contains(idStr, StringComparison.Ordinal)
            && (instanceId == compat.InstanceId || aliasMatches);
    }

    private SaveStateEntry Insert(SaveStateEntry entry)
    {
        foreach (SaveStateEntry existing in _entries)
        {
            if (Matches(existing, entry.IdStr, entry.InstanceId))
            {
                throw new DuplicateSaveStateEntryException(existing, entry.IdStr, entry.InstanceId);
            }
        }

        int index = _entries.FindIndex(e => e.Priority < entry.Priority);
        if (index < 0)
        {
            _entries.Add(entry);
        }
        else
        {
            _entries.Insert(index, entry);
        }

        Publish();
        return entry;
    }

    private int RemoveWhere(Predicate<SaveStateEntry> match)
    {
        lock (_gate)
        {
            int removed = _entries.RemoveAll(match);
            Publish();
            return removed;
        }
    }

    private void Publish() => Volatile.Write(ref _snapshot, _entries.ToArray());

    private uint NextInstanceId(string idStr)
    {
        uint next = 0;
        foreach (SaveStateEntry entry in _entries)
        {
            if (entry.IdStr == idStr && entry.InstanceId >= next)
            {
                next = entry.InstanceId + 1;
            }
        }

        return next;
    }

    private uint NextCompatInstanceId(string name)
    {
        uint next = 0;
        foreach (SaveStateEntry entry in _entries)
        {
            if (entry.Compat is { } compat && compat.IdStr == name && compat.InstanceId >= next)
            {
                next = compat.InstanceId + 1;
            }
        }

        return next;
    }

    private static void CheckIdStr(string idStr)
    {
        ArgumentException.ThrowIfNullOrEmpty(idStr);
        int bytes = Encoding.UTF8.GetByteCount(idStr);
        if (bytes > MaxIdStrBytes)
        {
            throw new ArgumentException(
                $"section name '{idStr}' is {bytes} bytes; a section header holds at most {MaxIdStrBytes}", nameof(idStr));
        }
    }
}
