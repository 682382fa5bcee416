namespace Beemesh.Overlay;

/// <summary>HyParView (Leitão, Pereira, Rodrigues, DSN 2007): active and passive views.</summary>
public sealed partial class OverlayNode
{
    /// <summary>Sends JOIN: to one contact at first, to <see cref="OverlayOptions.JoinFanout"/> at once when <paramref name="retry"/>.</summary>
    private void SendJoin(long now, bool retry = false)
    {
        int known = _contacts.Length + Math.Min(_recentCount, RecentPeers);
        if (!Starved || known == 0)
        {
            _joinDeadline = long.MaxValue;
            return;
        }

        // The configured contacts first, then peers this node was linked to before.
        for (int k = retry ? Math.Min(Math.Max(1, _options.JoinFanout), known) : 1; k > 0; k--)
        {
            int pick = _nextContact++ % known;
            PeerAddress contact = pick < _contacts.Length ? _contacts[pick] : _recent[pick - _contacts.Length];
            Send(contact, new OverlayMessage(OverlayMessageType.Join, Self));
        }

        _joinDeadline = now + _options.JoinTimeout;
    }

    private void OnJoin(PeerAddress from, long now)
    {
        // The contact answers with a sample of its views, so the newcomer's passive view is not empty.
        Send(from, new OverlayMessage(OverlayMessageType.JoinReply, peers: Sample(_options.ShuffleActiveCount, _options.ShufflePassiveCount, from.Id)));
        AddActive(from, now);
        foreach (ActiveLink link in _active.ToArray())
        {
            if (link.Peer.Id != from.Id)
            {
                Send(link.Peer, new OverlayMessage(OverlayMessageType.ForwardJoin, from, _options.ActiveRandomWalkLength));
            }
        }
    }

    private void OnJoinReply(PeerAddress from, OverlayMessage message, long now)
    {
        _joinDeadline = long.MaxValue;
        AddActive(from, now);
        Integrate(message.Peers, null);
    }

    private void OnForwardJoin(PeerAddress from, OverlayMessage message, long now)
    {
        PeerAddress joiner = message.Peer;
        if (joiner.Id == Self.Id)
        {
            return;
        }

        int ttl = message.Ttl;
        if (ttl <= 0 || _active.Count <= 1)
        {
            if (Find(joiner.Id) is null)
            {
                AddActive(joiner, now);
                Send(joiner, new OverlayMessage(OverlayMessageType.Neighbor, Self, flag: true));
            }

            return;
        }

        if (ttl == _options.PassiveRandomWalkLength)
        {
            AddPassive(joiner);
        }

        ActiveLink? next = RandomActiveExcept(from.Id, joiner.Id);
        if (next is null)
        {
            if (Find(joiner.Id) is null)
            {
                AddActive(joiner, now);
                Send(joiner, new OverlayMessage(OverlayMessageType.Neighbor, Self, flag: true));
            }

            return;
        }

        Send(next.Peer, new OverlayMessage(OverlayMessageType.ForwardJoin, joiner, ttl - 1));
    }

    private void OnNeighbor(PeerAddress from, bool highPriority, long now)
    {
        bool accept = Find(from.Id) is not null || highPriority || _active.Count < _options.ActiveViewSize;
        if (accept)
        {
            RemovePending(from.Id);
            AddActive(from, now);
        }

        Send(from, new OverlayMessage(OverlayMessageType.NeighborReply, Self, flag: accept));
    }

    private void OnNeighborReply(PeerAddress from, bool accepted, long now)
    {
        bool wasPending = TakePending(from.Id, out bool extra);
        if (accepted)
        {
            if (Find(from.Id) is null && (wasPending || _active.Count < _options.ActiveViewSize))
            {
                AddActive(from, now, overflow: extra);
            }
            else if (Find(from.Id) is null)
            {
                // An answer we no longer want (the view filled meanwhile): close the other side.
                Send(from, OverlayMessage.Disconnect);
            }
        }
        else
        {
            Refill(now);
        }
    }

    private void OnDisconnect(PeerAddress from, long now)
    {
        RemovePending(from.Id);
        if (RemoveActive(from.Id, now) is not null)
        {
            AddPassive(from);
            Refill(now);
        }
    }

    private void OnPing(PeerAddress from, ActiveLink? link)
    {
        // A keepalive on a link we do not hold (a DISCONNECT was lost): say so again, so the
        // other side does not keep a one-sided link.
        if (link is null && !IsPending(from.Id))
        {
            Send(from, OverlayMessage.Disconnect);
        }
    }

    private void StartShuffle(long now)
    {
        if (_active.Count == 0)
        {
            return;
        }

        PeerAddress[] sample = Sample(_options.ShuffleActiveCount, _options.ShufflePassiveCount, 0);
        _lastShuffleSample = sample;
        PeerAddress to = _active[_random.Next(_active.Count)].Peer;
        var withSelf = new PeerAddress[sample.Length + 1];
        withSelf[0] = Self;
        sample.CopyTo(withSelf, 1);
        Send(to, new OverlayMessage(OverlayMessageType.Shuffle, Self, _options.ShuffleWalkLength, peers: withSelf));
    }

    private void OnShuffle(PeerAddress from, OverlayMessage message, long now)
    {
        PeerAddress origin = message.Peer;
        int ttl = message.Ttl - 1;
        if (ttl > 0 && _active.Count > 1)
        {
            ActiveLink? next = RandomActiveExcept(from.Id, origin.Id);
            if (next is not null)
            {
                Send(next.Peer, new OverlayMessage(OverlayMessageType.Shuffle, origin, ttl, peers: message.Peers));
                return;
            }
        }

        if (origin.Id == Self.Id)
        {
            return;
        }

        var reply = new PeerAddress[Math.Min(message.Peers.Length, _passive.Count)];
        for (int i = 0; i < reply.Length; i++)
        {
            reply[i] = _passive[_random.Next(_passive.Count)];
        }

        Send(origin, new OverlayMessage(OverlayMessageType.ShuffleReply, peers: reply));
        Integrate(message.Peers, reply);
    }

    /// <summary>Up to <paramref name="activeCount"/> active and <paramref name="passiveCount"/> passive peers, chosen at random, never <paramref name="exclude"/>.</summary>
    private PeerAddress[] Sample(int activeCount, int passiveCount, ulong exclude)
    {
        var sample = new List<PeerAddress>(activeCount + passiveCount);
        int a = _active.Count;
        int start = a > 0 ? _random.Next(a) : 0;
        for (int k = 0; k < a && sample.Count < activeCount; k++)
        {
            PeerAddress p = _active[(start + k) % a].Peer;
            if (p.Id != exclude)
            {
                sample.Add(p);
            }
        }

        int n = _passive.Count;
        start = n > 0 ? _random.Next(n) : 0;
        int limit = sample.Count + passiveCount;
        for (int k = 0; k < n && sample.Count < limit; k++)
        {
            PeerAddress p = _passive[(start + k) % n];
            if (p.Id != exclude)
            {
                sample.Add(p);
            }
        }

        return [.. sample];
    }

    private void Integrate(PeerAddress[] peers, PeerAddress[]? sentBack)
    {
        foreach (PeerAddress p in peers)
        {
            if (p.Id == Self.Id || Find(p.Id) is not null || IndexOfPassive(p.Id) >= 0)
            {
                continue;
            }

            if (_passive.Count >= _options.PassiveViewSize)
            {
                // Prefer dropping what we just sent to the other side: it lives on there.
                int victim = -1;
                if (sentBack is not null)
                {
                    foreach (PeerAddress s in sentBack)
                    {
                        victim = IndexOfPassive(s.Id);
                        if (victim >= 0)
                        {
                            break;
                        }
                    }
                }

                _passive.RemoveAt(victim >= 0 ? victim : _random.Next(_passive.Count));
            }

            _passive.Add(p);
        }
    }

    /// <summary>
    /// Takes <paramref name="peer"/> into the active view. A full view drops a random link for it,
    /// unless <paramref name="overflow"/> (a link opened because the node is cut off, see
    /// <see cref="OnIsolated"/>) and the view is within <see cref="OverlayOptions.IsolationNeighbors"/> of its size.
    /// </summary>
    private ActiveLink AddActive(PeerAddress peer, long now, bool overflow = false)
    {
        ActiveLink? existing = Find(peer.Id);
        if (existing is not null)
        {
            return existing;
        }

        RemovePassive(peer.Id);
        if (_active.Count >= _options.ActiveViewSize + (overflow ? _options.IsolationNeighbors : 0))
        {
            ActiveLink dropped = MostSilent(now) ?? _active[_random.Next(_active.Count)];
            Send(dropped.Peer, OverlayMessage.Disconnect);
            RemoveActive(dropped.Peer.Id, now);
            AddPassive(dropped.Peer);
        }

        var link = new ActiveLink(peer, now);
        _active.Add(link);
        _recent[_recentCount++ % RecentPeers] = peer;
        _observer?.ActiveViewChanged(this, peer, true, now);
        _joinDeadline = long.MaxValue;
        OnLinkUp(link, now);
        return link;
    }

    /// <summary>The active link silent the longest, when it has been silent over <see cref="OverlayOptions.SilenceThreshold"/>: the one to drop first.</summary>
    private ActiveLink? MostSilent(long now)
    {
        ActiveLink? silent = null;
        foreach (ActiveLink link in _active)
        {
            if (now - link.LastHeard > _options.SilenceThreshold && (silent is null || link.LastHeard < silent.LastHeard))
            {
                silent = link;
            }
        }

        return silent;
    }

    private ActiveLink? RemoveActive(ulong id, long now)
    {
        for (int i = 0; i < _active.Count; i++)
        {
            if (_active[i].Peer.Id == id)
            {
                ActiveLink link = _active[i];
                _active.RemoveAt(i);
                _observer?.ActiveViewChanged(this, link.Peer, false, now);
                return link;
            }
        }

        return null;
    }

    private void AddPassive(PeerAddress peer)
    {
        if (peer.Id == Self.Id || Find(peer.Id) is not null || IndexOfPassive(peer.Id) >= 0)
        {
            return;
        }

        if (_passive.Count >= _options.PassiveViewSize)
        {
            _passive.RemoveAt(_random.Next(_passive.Count));
        }

        _passive.Add(peer);
    }

    private void RemovePassive(ulong id)
    {
        int i = IndexOfPassive(id);
        if (i >= 0)
        {
            _passive.RemoveAt(i);
        }
    }

    private int IndexOfPassive(ulong id)
    {
        for (int i = 0; i < _passive.Count; i++)
        {
            if (_passive[i].Id == id)
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>Asks passive peers to become neighbours until the active view would be full.</summary>
    private void Refill(long now)
    {
        int pending = _pending?.Count ?? 0;
        int attempts = _passive.Count;
        while (_active.Count + pending < _options.ActiveViewSize && attempts-- > 0)
        {
            PeerAddress candidate = _passive[_random.Next(_passive.Count)];
            if (IsPending(candidate.Id))
            {
                continue;
            }

            Send(candidate, new OverlayMessage(OverlayMessageType.Neighbor, Self, flag: NeedsHighPriority));
            (_pending ??= []).Add((candidate, now + _options.NeighborTimeout, 1, false));
            pending++;
        }

        if (_active.Count < _options.ActiveViewSize && pending == 0 && _active.Count > 0 && _passive.Count == 0 && now >= _nextStarvedShuffle)
        {
            // No candidates left: a shuffle brings some, sooner than the periodic one would.
            _nextStarvedShuffle = now + _options.KeepaliveInterval;
            StartShuffle(now);
        }

        if (Starved && pending == 0 && _joinDeadline == long.MaxValue)
        {
            // Isolated, or a few nodes linked only among themselves with no candidate left (a
            // shuffle inside such an island finds no one new): join again through a contact.
            SendJoin(now);
        }
    }

    /// <summary>
    /// HyParView asks with high priority (the other side must accept) when the active view is
    /// empty; here also while it is under half full, so a node left with one or two links by a
    /// crash or by refusals does not stay that thin while every candidate's view is full.
    /// </summary>
    private bool NeedsHighPriority => _active.Count * 2 < _options.ActiveViewSize;

    /// <summary>No neighbour, or an active view under half full with an empty passive view.</summary>
    private bool Starved => _active.Count == 0 || (NeedsHighPriority && _passive.Count == 0);

    private bool IsPending(ulong id)
    {
        if (_pending is null)
        {
            return false;
        }

        foreach (var p in _pending)
        {
            if (p.Peer.Id == id)
            {
                return true;
            }
        }

        return false;
    }

    private bool RemovePending(ulong id) => TakePending(id, out _);

    private bool TakePending(ulong id, out bool extra)
    {
        extra = false;
        if (_pending is null)
        {
            return false;
        }

        for (int i = 0; i < _pending.Count; i++)
        {
            if (_pending[i].Peer.Id == id)
            {
                extra = _pending[i].Extra;
                _pending.RemoveAt(i);
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// When the node counts as cut off: the time all its active neighbours but one (or its only
    /// one) have been silent for <see cref="OverlayOptions.SilenceThreshold"/>; <see cref="long.MaxValue"/> with no active neighbour.
    /// </summary>
    private long IsolatedFrom()
    {
        int n = _active.Count;
        if (n == 0)
        {
            return long.MaxValue;
        }

        // The second most recent LastHeard (the only one with a single link).
        long first = long.MinValue, second = long.MinValue;
        foreach (ActiveLink link in _active)
        {
            long heard = link.LastHeard;
            if (heard > first)
            {
                second = first;
                first = heard;
            }
            else if (heard > second)
            {
                second = heard;
            }
        }

        return (n == 1 ? first : second) + _options.SilenceThreshold;
    }

    /// <summary>
    /// All active neighbours but at most one have gone silent: ask up to
    /// <see cref="OverlayOptions.IsolationNeighbors"/> passive peers at once, with high priority,
    /// without evicting the silent ones yet (failure detection does that when their probes go
    /// unanswered). The digest exchange on each new link brings the records missed meanwhile.
    /// </summary>
    private void OnIsolated(long now)
    {
        _nextIsolationCheck = now + _options.IsolationRetryInterval;
        int extra = 0;
        if (_pending is not null)
        {
            foreach (var p in _pending)
            {
                extra += p.Extra ? 1 : 0;
            }
        }

        int limit = Math.Min(extra + _options.IsolationNeighbors, 3 * _options.IsolationNeighbors);
        // Passive peers first; when too few are left to ask (a node that joined late may have
        // none, or only ones that refuse it), the contacts and the peers last linked to stand in
        // for them, rather than wait for failure detection and a new JOIN.
        List<PeerAddress> candidates = FreeCandidates(_passive);
        int fromPassive = candidates.Count;
        if (fromPassive < limit - extra)
        {
            foreach (PeerAddress peer in FreeCandidates(FallbackCandidates()))
            {
                if (!candidates.Exists(c => c.Id == peer.Id))
                {
                    candidates.Add(peer);
                }
            }
        }

        while (extra < limit && candidates.Count > 0)
        {
            int i = fromPassive > 0 ? _random.Next(fromPassive) : _random.Next(candidates.Count);
            PeerAddress candidate = candidates[i];
            candidates.RemoveAt(i);
            fromPassive = Math.Max(0, fromPassive - (i < fromPassive ? 1 : 0));
            Send(candidate, new OverlayMessage(OverlayMessageType.Neighbor, Self, flag: true));
            (_pending ??= []).Add((candidate, now + _options.NeighborTimeout, 1, true));
            extra++;
        }
    }

    /// <summary>The peers of <paramref name="peers"/> neither active nor asked already.</summary>
    private List<PeerAddress> FreeCandidates(IEnumerable<PeerAddress> peers) =>
        [.. peers.Where(p => !IsPending(p.Id) && Find(p.Id) is null)];

    /// <summary>The contacts and the peers last linked to, other than this node.</summary>
    private List<PeerAddress> FallbackCandidates()
    {
        var candidates = new List<PeerAddress>(_contacts.Length + RecentPeers);
        foreach (PeerAddress peer in _contacts.Concat(_recent.Take(Math.Min(_recentCount, RecentPeers))))
        {
            if (peer.Id != Self.Id && !candidates.Exists(c => c.Id == peer.Id))
            {
                candidates.Add(peer);
            }
        }

        return candidates;
    }

    /// <summary>
    /// An active view over its size (links opened while cut off) goes back to it once no neighbour
    /// is silent: the extra links are closed (DISCONNECT, back to the passive view).
    /// </summary>
    private void TrimExtraLinks(long now)
    {
        if (_active.Count <= _options.ActiveViewSize)
        {
            return;
        }

        foreach (ActiveLink link in _active)
        {
            if (link.SuspectDeadline != 0 || now - link.LastHeard > _options.SilenceThreshold)
            {
                return;
            }
        }

        while (_active.Count > _options.ActiveViewSize)
        {
            ActiveLink dropped = _active[_random.Next(_active.Count)];
            Send(dropped.Peer, OverlayMessage.Disconnect);
            RemoveActive(dropped.Peer.Id, now);
            AddPassive(dropped.Peer);
        }
    }

    private ActiveLink? RandomActiveExcept(ulong a, ulong b)
    {
        int n = _active.Count;
        if (n == 0)
        {
            return null;
        }

        int start = _random.Next(n);
        for (int k = 0; k < n; k++)
        {
            ActiveLink link = _active[(start + k) % n];
            if (link.Peer.Id != a && link.Peer.Id != b)
            {
                return link;
            }
        }

        return null;
    }
}
