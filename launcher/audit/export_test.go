package audit

// ParseRecord is what Read makes of one line of server's log.
func ParseRecord(server string, line []byte) (Record, error) {
	var rec Record
	var err error
	t := &tail{warn: func(e error) { err = e }}
	t.parse(line, server+".jsonl", server, 1, func(r Record) { rec = r })
	return rec, err
}
